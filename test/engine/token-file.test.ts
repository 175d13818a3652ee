import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { runAgent } from '../cli/support/spawn-agent.js';
import { pino } from 'pino';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { waitForCompletion } from './harness.js';

/**
 * Tokens: a token file (refused, as ssh refuses a private key, when group or others can access
 * it) or the environment are the ways that keep the token out of /proc/<pid>/cmdline; `--token`
 * still works, with a warning that says so.
 */
const TOKEN = 'robot-7-9f2c4e0b7a1d4c3e8b6a5f40d2e1c7a9';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ dir: TempDir; server: TestServer; tokenFile: string; file: string }> {
  const dir = await createTempDir('token-file');
  cleanups.push(() => dir.remove());
  const server = await startTestServer({ tokens: [`robot7=${TOKEN}`] });
  cleanups.push(() => server.close());
  const tokenFile = path.join(dir.path, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  const file = path.join(dir.path, 'data.bin');
  await writeRandomFile(file, 20_000);
  return { dir, server, tokenFile, file };
}

function manager(s: { dir: TempDir; server: TestServer }, options: Record<string, unknown>): NetworkManager {
  const engine = new NetworkManager({
    uploadUrl: s.server.url,
    stateDir: path.join(s.dir.path, `state-${Math.random()}`),
    logger: pino({ level: 'silent' }),
    ...options,
  });
  cleanups.push(() => engine.stop());
  return engine;
}

describe('the token file', { timeout: 120_000 }, () => {
  it('a private file (0600) gives the token; the file arrives as the uploader it names', async () => {
    const s = await setup();
    const engine = manager(s, { tokenFile: s.tokenFile });
    await engine.start();
    const done = await waitForCompletion(engine, await engine.addUpload(s.file, { remotePath: 'tok/data.bin' }));
    expect(done.sha256).toBe(await sha256OfFile(s.file));
    expect(await sha256OfFile(s.server.completedPath('robot7', 'tok/data.bin'))).toBe(done.sha256);
  });

  it.each(['0644', '0640', '0604', '0660'])('mode %s is refused, naming the file and the chmod', async (octal) => {
    const mode = Number.parseInt(octal, 8);
    const s = await setup();
    chmodSync(s.tokenFile, mode);
    const engine = manager(s, { tokenFile: s.tokenFile });
    const error = await engine.start().catch((reason: unknown) => reason);
    expect(error).toMatchObject({ code: 'TOKEN_FILE' });
    expect((error as Error).message).toContain(`The token file ${s.tokenFile} is accessible by group or others`);
    expect((error as Error).message).toContain(`(mode ${octal})`);
    expect((error as Error).message).toContain(`chmod 600 ${s.tokenFile}`);
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it('an empty file, a missing file, or both token and tokenFile are refused clearly', async () => {
    const s = await setup();
    writeFileSync(s.tokenFile, '\n');
    expect(
      await manager(s, { tokenFile: s.tokenFile })
        .start()
        .catch((e: Error) => e.message),
    ).toMatch(/is empty/);
    const missing = path.join(s.dir.path, 'nope');
    expect(
      await manager(s, { tokenFile: missing })
        .start()
        .catch((e: Error) => e.message),
    ).toContain(`Cannot read the token file ${missing}: ENOENT`);
    const both = await manager(s, { tokenFile: s.tokenFile, token: TOKEN })
      .start()
      .catch((e: unknown) => e);
    expect(both).toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('the program: --token-file (a loose one exits 78), --token with a warning, the environment', async () => {
    const s = await setup();
    const base = ['upload', s.file, '--server', s.server.url];
    const state = (name: string) => ['--state-dir', path.join(s.dir.path, name)];

    const fromFile = await runAgent([...base, ...state('a'), '--token-file', s.tokenFile]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).not.toMatch(/cmdline/);

    chmodSync(s.tokenFile, 0o644);
    const loose = await runAgent([...base, ...state('b'), '--token-file', s.tokenFile]);
    expect(loose.code).toBe(78);
    expect(loose.stderr.trim().split('\n')).toHaveLength(1);
    expect(loose.stderr).toContain(`chmod 600 ${s.tokenFile}`);

    const flag = await runAgent([...base, ...state('c'), '--token', TOKEN]);
    expect(flag.code, flag.stderr).toBe(0);
    expect(flag.stderr).toMatch(/--token is visible to every user of this machine in \/proc\/\d+\/cmdline/);
    expect(flag.stderr).toContain('--token-file');
    expect(flag.stderr).not.toContain(TOKEN);

    const { plainEnv } = await import('../cli/support/spawn-agent.js');
    const fromEnv = await runAgent([...base, ...state('d')], { env: plainEnv({ UPLOAD_AGENT_TOKEN: TOKEN }) });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stderr).not.toMatch(/cmdline/);
  });
});
