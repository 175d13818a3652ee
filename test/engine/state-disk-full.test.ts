import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UploadAgent } from '../../agent/app/upload-agent.js';
import { assessAgent } from '../../agent/ros/diagnostics.js';
import { DiagnosticLevel } from '../../agent/ros/diagnostic-levels.js';
import { runAgent, spawnAgent } from '../cli/support/spawn-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { sha256Of, writeRandomFile } from '../helpers/random-file.js';
import { mountProblem, mountSmallFilesystem, type SmallFilesystem } from '../helpers/small-filesystem.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A full state disk (the journal's and the ledger's) never crashes the agent: it stops taking
 * new work, keeps what runs safe (nothing recorded that is not true, nothing lost), reports it
 * (one error line, the status and /diagnostics ERROR), and goes on by itself once space is back;
 * the one-shot `upload` exits 73. The state directory is a real tmpfs of a few MiB, filled up
 * during the run and then freed.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

let cannotMount: string | undefined;
beforeAll(async () => {
  const scratch = await createTempDir('mount-check');
  cannotMount = await mountProblem(scratch.path);
  await scratch.remove();
  // Never a silent skip where the suite must be complete.
  if (cannotMount && process.env.CI)
    throw new Error(`state-disk-full tests need a tmpfs mount (run as root), which failed: ${cannotMount}`);
});

async function world(): Promise<{ dir: TempDir; state: SmallFilesystem; root: string }> {
  const dir = await createTempDir('state-full');
  cleanups.push(() => dir.remove());
  const state = await mountSmallFilesystem(path.join(dir.path, 'state'), 8 * 1024 * 1024);
  cleanups.push(() => state.unmount());
  const root = path.join(dir.path, 'recordings');
  await mkdir(root, { recursive: true });
  return { dir, state, root };
}

describe('a full state disk', { timeout: 180_000 }, () => {
  it('the daemon stops new work, reports ERROR once, keeps the running upload safe, resumes', async (context) => {
    if (cannotMount) context.skip(`cannot mount a tmpfs here: ${cannotMount}`);
    const { state, root } = await world();
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const proxy = await FaultProxy.start({ port: server.server.port });
    cleanups.push(() => proxy.close());
    const logs = captureLogger('info');
    const agent = new UploadAgent({
      config: {
        serverUrl: proxy.url(),
        watchDir: root,
        stateDir: state.dir,
        quietPeriod: 0.1,
        retryDelay: 0.05,
        retryMaxDelay: 0.5,
        chunkSize: 64 * 1024,
        bandwidthLimit: 1024 * 1024,
      },
      logger: logs.logger,
    });
    cleanups.push(() => agent.stop());
    await agent.start();

    // A first bag goes through normally.
    await mkdir(path.join(root, 'a'), { recursive: true });
    await writeFile(path.join(root, 'a', 'a_0.mcap'), syntheticMcap(100_000));
    await writeFile(path.join(root, 'a', 'metadata.yaml'), 'a: 1\n');
    await waitFor(
      () => existsSync(server.completedPath('anonymous', 'a/metadata.yaml')),
      'the first bag uploaded',
      90_000,
    );

    // A long split is under way (64 KiB chunks at 1 MiB/s), then the state disk fills up.
    const big = syntheticMcap(3 * 1024 * 1024);
    await mkdir(path.join(root, 'b'), { recursive: true });
    await writeFile(path.join(root, 'b', 'b_0.mcap'), big);
    await writeFile(path.join(root, 'b', 'metadata.yaml'), 'b: 1\n');
    await waitFor(
      () => agent.status().uploads.some((u) => u.remotePath === 'b/b_0.mcap' && u.bytesSent > 256 * 1024),
      'the big split under way',
    );
    state.fill();
    // More recordings arrive while it is full.
    await mkdir(path.join(root, 'c'), { recursive: true });
    for (let n = 0; n < 5; n++) await writeFile(path.join(root, 'c', `c_${n}.mcap`), syntheticMcap(20_000 + n));
    await writeFile(path.join(root, 'c', 'metadata.yaml'), 'c: 1\n');

    await waitFor(
      () => agent.status().problems.some((problem) => problem.code === 'STATE_DISK_FULL'),
      'the full state disk reported in the status',
      60_000,
    );
    const status = agent.status();
    const assessed = assessAgent(status);
    expect(assessed.level).toBe(DiagnosticLevel.ERROR);
    expect(assessed.message).toMatch(/disk of the state directory is full|state disk/i);
    expect(assessed.values).toContainEqual(expect.objectContaining({ key: 'problem: STATE_DISK_FULL' }));
    // Nothing the server has not verified is recorded as done; the big split is not failed.
    expect(status.uploads.find((u) => u.remotePath === 'b/b_0.mcap')?.state).not.toBe('failed');
    expect(status.uploads.filter((u) => u.state === 'failed')).toEqual([]);
    // No new work while full: once blocked, no new upload begins.
    const bytesWhenBlocked = proxy.stats.bytesUp;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(proxy.stats.bytesUp - bytesWhenBlocked, 'bytes sent while blocked (one chunk at most)').toBeLessThanOrEqual(
      2 * 64 * 1024 + 16 * 1024,
    );

    // Space comes back: everything goes on by itself.
    state.release();
    await waitFor(
      () =>
        ['b/b_0.mcap', 'b/metadata.yaml', 'c/metadata.yaml'].every((remote) =>
          existsSync(server.completedPath('anonymous', remote)),
        ),
      'every bag uploaded once space is back',
      90_000,
    );
    await waitFor(() => agent.status().problems.length === 0, 'the problem cleared');
    expect(sha256Of(readFileSync(server.completedPath('anonymous', 'b/b_0.mcap')))).toBe(sha256Of(big));
    for (let n = 0; n < 5; n++)
      expect(readFileSync(server.completedPath('anonymous', `c/c_${n}.mcap`)).length).toBe(20_000 + n);
    // The resumed split was not sent again from the start.
    expect(proxy.stats.bytesUp).toBeLessThan(big.length + 1024 * 1024);
    const errors = logs.entries().filter((entry) => entry.level === 50 && entry.code === 'STATE_DISK_FULL');
    expect(errors.filter((entry) => /no new uploads until space is freed/.test(String(entry.msg)))).toHaveLength(1);
    expect(logs.text()).not.toMatch(/SqliteError|uncaught/i);
  });

  it('`upload` exits 73 naming the full disk, and the same command resumes once there is space', async (context) => {
    if (cannotMount) context.skip(`cannot mount a tmpfs here: ${cannotMount}`);
    const { dir, state } = await world();
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const file = path.join(dir.path, 'long.bin');
    const sha = await writeRandomFile(file, 2 * 1024 * 1024);
    const args = [
      'upload',
      file,
      '--server',
      server.url,
      '--state-dir',
      state.dir,
      '--chunk-size',
      '64KiB',
      '--bandwidth-limit',
      '512KiB',
      '--retry-delay',
      '50ms',
    ];
    const first = spawnAgent(args);
    cleanups.push(async () => first.kill('SIGKILL'));
    await waitFor(() => /uploading/.test(first.stdout), 'the upload under way', 30_000);
    state.fill();
    const { code } = await first.exited;
    expect(code, first.stderr).toBe(73);
    expect(first.stdout).toMatch(/stopped: .*state directory is full/);
    expect(first.stderr).toMatch(/state disk is full/);
    expect(first.stderr).not.toMatch(/SqliteError|at .*\.js:\d+/);

    state.release();
    const again = await runAgent(args);
    expect(again.code, again.stderr).toBe(0);
    expect(sha256Of(readFileSync(server.completedPath('anonymous', 'long.bin')))).toBe(sha);
  });
});
