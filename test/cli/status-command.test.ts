import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { plainEnv, runAgent, spawnAgent } from './support/spawn-agent.js';

/**
 * `status` tells the truth about a running agent (over its control socket) and about one that
 * stopped (from its journal); `retry`, `pause` and `resume` reach the running daemon. Real
 * agent processes; HOME is a temp folder, so the "last run" pointer is this test's own.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface StatusJson {
  stateDir: string;
  views: {
    kind: string;
    running: boolean;
    paused?: boolean;
    run?: { server: { embedded: boolean; storage?: string } };
    uploads: {
      remotePath: string;
      state: string;
      bytesSent: number;
      bytesTotal: number;
      rate: number;
      errorCode?: string;
    }[];
  }[];
}

describe('status, retry, pause and resume', { timeout: 240_000 }, () => {
  it('shows a running upload (bytes, rate, ETA), pauses and resumes it, finds the last run by itself', async () => {
    const dir = await createTempDir('status');
    cleanups.push(() => dir.remove());
    const home = path.join(dir.path, 'home');
    const rec = path.join(dir.path, 'rec');
    const state = path.join(dir.path, 'state');
    mkdirSync(path.join(rec, 'b'), { recursive: true });
    mkdirSync(home);
    writeFileSync(path.join(rec, 'b', 'b_0.mcap'), syntheticMcap(32 * 1024 * 1024));
    writeFileSync(path.join(rec, 'b', 'b_1.mcap'), syntheticMcap(1024));
    const env = plainEnv({ HOME: home });
    const agent = spawnAgent(
      [
        'watch',
        rec,
        '--state-dir',
        state,
        '--embedded-upload-dir',
        path.join(dir.path, 'uploads'),
        '--bandwidth-limit',
        '256KiB',
        '--chunk-size',
        '256KiB',
        // The stop leaves the bag's last split waiting to close (no drain: not what this tests).
        '--drain-timeout',
        '0',
      ],
      { env },
    );
    cleanups.push(async () => {
      agent.kill('SIGKILL');
      await agent.exited;
    });
    // No --state-dir: status finds the state directory the last run used (HOME's pointer).
    const status = async (...args: string[]): Promise<StatusJson> => {
      const run = await runAgent(['status', '--json', ...args], { env });
      expect(run.code, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as StatusJson;
    };
    const running = await waitFor(
      async () => {
        const now = await status().catch(() => undefined);
        const upload = now?.views[0]?.uploads.find((u) => u.remotePath === 'b/b_0.mcap');
        return upload && upload.state === 'uploading' && upload.bytesSent > 0 && upload.rate > 0 ? now : undefined;
      },
      'b_0 uploading, as status shows it',
      60_000,
    );
    expect(running.stateDir).toBe(state);
    expect(running.views[0]!.running).toBe(true);
    expect(running.views[0]!.run!.server.embedded).toBe(true);
    const text = await runAgent(['status'], { env });
    expect(text.stdout).toMatch(/^State directory: .*state \(the last run's \(watch, started /);
    expect(text.stdout).toContain('THE BUNDLED SERVER ON THIS MACHINE');
    expect(text.stdout).toMatch(
      /Uploading: 1\n {4}b\/b_0\.mcap {2}[\d.]+ (KiB|MiB) of 32 MiB \(\d+ %\) {2}[\d.]+ KiB\/s {2}ETA \S+/,
    );
    // The control socket is the agent user's only.
    expect(statSync(path.join(state, 'control.sock')).mode & 0o777).toBe(0o600);

    const paused = await runAgent(['pause', '--state-dir', state], { env });
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^paused/);
    expect((await status('--state-dir', state)).views[0]!.paused).toBe(true);
    const resumed = await runAgent(['resume'], { env });
    expect(resumed.stdout).toMatch(/^resumed/);
    expect((await status()).views[0]!.paused).toBe(false);

    // Paused before the stop, so the file is still half-sent whatever the machine's load (32 MiB
    // at 256 KiB/s leave two minutes for the steps above).
    expect((await runAgent(['pause'], { env })).code).toBe(0);
    agent.kill('SIGINT');
    expect((await agent.exited).code).toBe(0);
    // Stopped: the journal tells what is left and how much of it the server holds.
    const stopped = await runAgent(['status'], { env });
    expect(stopped.stdout).toMatch(/Daemon \(watch\): not running/);
    expect(stopped.stdout).toMatch(
      /Queued: 1 \(they go on at the next start\)\n {4}b\/b_0\.mcap {2}[\d.]+ (KiB|MiB) of 32 MiB sent/,
    );
    const noAgent = await runAgent(['retry', '--state-dir', state], { env });
    expect(noAgent.code).toBe(73);
    expect(noAgent.stderr).toMatch(/No running agent on .*state/);
  });

  it('lists a failure while it is current; after retry verifies the file, it is gone', async () => {
    const dir = await createTempDir('status-retry');
    cleanups.push(() => dir.remove());
    const rec = path.join(dir.path, 'rec');
    const state = path.join(dir.path, 'state');
    mkdirSync(path.join(rec, 'f'), { recursive: true });
    writeFileSync(path.join(rec, 'f', 'f_0.db3'), Buffer.alloc(2 * 1024 * 1024, 3));
    writeFileSync(path.join(rec, 'f', 'f_1.db3'), Buffer.alloc(10, 3));
    // A server that refuses the file (too large for it), then one on the same port and storage that takes it.
    let server: TestServer = await startTestServer({ maxFileSize: 1024 * 1024, uploadDir: path.join(dir.path, 'srv') });
    cleanups.push(() => server.close({ keepFiles: true }));
    const port = server.server.port;
    const env = plainEnv({ HOME: path.join(dir.path, 'home') });
    const agent = spawnAgent(['watch', rec, '--state-dir', state, '--server-url', server.url, '--settle-time', '1s'], {
      env,
    });
    cleanups.push(async () => {
      agent.kill('SIGKILL');
      await agent.exited;
    });
    const status = async (): Promise<StatusJson> =>
      JSON.parse((await runAgent(['status', '--json', '--state-dir', state], { env })).stdout) as StatusJson;
    const failed = await waitFor(
      async () => {
        const now = await status().catch(() => undefined);
        return now?.views[0]?.uploads.find((u) => u.remotePath === 'f/f_0.db3' && u.state === 'failed');
      },
      'f_0 failed',
      60_000,
    );
    expect(failed.errorCode).toBe('FILE_TOO_LARGE');
    expect((await runAgent(['status', '--state-dir', state], { env })).stdout).toMatch(
      /Failed: 1 \(ros2-upload-agent retry puts them back in the queue\)\n {4}f\/f_0\.db3 {2}FILE_TOO_LARGE: /,
    );
    await server.close({ keepFiles: true });
    server = await startTestServer({ port, uploadDir: path.join(dir.path, 'srv') });
    const retry = await runAgent(['retry', '--state-dir', state], { env });
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toMatch(/^1 failed upload\(s\) queued again/);
    await waitFor(
      async () => {
        const now = await status().catch(() => undefined);
        return now?.views[0]?.uploads.some((u) => u.remotePath === 'f/f_0.db3' && u.state === 'completed');
      },
      'f_0 verified after retry',
      60_000,
    );
    const after = await status();
    expect(after.views[0]!.uploads.filter((u) => u.state === 'failed')).toEqual([]);
    expect((await runAgent(['status', '--state-dir', state], { env })).stdout).toContain('Failed: 0');
  });
});
