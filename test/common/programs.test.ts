import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runAgent, spawnAgent } from '../cli/support/spawn-agent.js';
import { runServerProgram, spawnServer } from '../helpers/spawn-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { testToken } from '../helpers/tokens.js';

const SECRET = testToken('programs robot1');

/**
 * What the two programs share, checked on the real processes (spawned from dist/): one version,
 * one exit-code map, one logger set-up (JSON lines with the program's name, secrets redacted).
 */
describe('both programs', { timeout: 120_000 }, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'programs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('print the package version', async () => {
    const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const [agent, server] = await Promise.all([runAgent(['--version']), runServerProgram(['--version'])]);
    expect([agent.code, agent.stdout.trim()]).toEqual([0, version]);
    expect([server.code, server.stdout.trim()]).toEqual([0, version]);
  });

  it('end with the same exit code for a mistake: 64 for a bad value, 78 for an unreadable config file', async () => {
    const missing = path.join(dir, 'missing.yaml');
    const broken = path.join(dir, 'broken.yaml');
    await writeFile(broken, 'agent: [unclosed\nserver: [unclosed\n');
    const runs = await Promise.all([
      runAgent(['status', '--chunk-size', 'huge', '--state-dir', dir]),
      runServerProgram(['--compression-level', 'high']),
      runAgent(['status', '--config', missing, '--state-dir', dir]),
      runServerProgram(['--config', missing]),
      runAgent(['status', '--config', broken, '--state-dir', dir]),
      runServerProgram(['--config', broken]),
    ]);
    expect(runs.map((run) => run.code)).toEqual([64, 64, 78, 78, 78, 78]);
    const named = ['chunkSize', 'compressionLevel', 'missing.yaml', 'missing.yaml', 'broken.yaml', 'broken.yaml'];
    for (const [index, run] of runs.entries()) expect(run.stderr.split('\n')[0]).toContain(named[index]);
    // The agent says it in one line (the server quotes the YAML parser's excerpt below its first line).
    for (const run of [runs[0]!, runs[2]!, runs[4]!]) expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('log JSON lines with their name: server on stdout, agent on stderr (stdout is for command output)', async () => {
    const server = await spawnServer(
      ['--host', '127.0.0.1', '--port', '0', '--upload-dir', path.join(dir, 'storage')],
      { env: { UPLOAD_SERVER_TOKENS: `robot1=${SECRET}` } },
    );
    try {
      const lines = server
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).toMatchObject({ name: 'ros2-upload-server', pid: server.child.pid });
      expect(server.stdout() + server.stderr()).not.toContain(SECRET);
    } finally {
      await server.stop();
    }
    const agent = spawnAgent([
      'watch',
      path.join(dir, 'recordings'),
      '--create-watch-dir',
      '--state-dir',
      path.join(dir, 'state'),
      '--embedded-upload-dir',
      path.join(dir, 'uploads'),
      '--token',
      'agent-secret-token',
    ]);
    try {
      await waitFor(() => agent.stderr.includes('watching for recordings'), 'the agent watching', 60_000);
    } finally {
      agent.kill('SIGTERM');
    }
    expect((await agent.exited).code).toBe(0);
    expect(agent.stdout).toBe('');
    const lines = agent.stderr
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const line of lines) expect(line).toMatchObject({ name: 'ros2-upload-agent' });
    expect(agent.stderr).not.toContain('agent-secret-token');
  });
});
