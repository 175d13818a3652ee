import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { RecordingProxy } from './support/recording-proxy.js';
import { spawnAgent, type SpawnedAgent } from './support/spawn-agent.js';

/** Acceptance with the real program (dist/agent/cli/main.js) as a child process. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dir: TempDir;
  server: TestServer;
  proxy: RecordingProxy;
  root: string;
  state: string;
  stored(remote: string): Buffer | undefined;
  agent(extra?: string[]): SpawnedAgent;
}

async function setup(): Promise<Setup> {
  const dir = await createTempDir('agent-process');
  cleanups.push(() => dir.remove());
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const proxy = await RecordingProxy.start(server.url);
  cleanups.push(() => proxy.close());
  const root = path.join(dir.path, 'recordings');
  mkdirSync(root);
  const state = path.join(dir.path, 'state');
  return {
    dir,
    server,
    proxy,
    root,
    state,
    stored(remote) {
      const file = server.completedPath('anonymous', remote);
      return existsSync(file) ? readFileSync(file) : undefined;
    },
    agent(extra = []) {
      const child = spawnAgent([
        'watch',
        root,
        '--server',
        proxy.url,
        '--state-dir',
        state,
        '--log-level',
        'warn',
        ...extra,
      ]);
      cleanups.push(async () => {
        child.kill('SIGKILL');
        await child.exited;
      });
      return child;
    },
  };
}

describe('the agent process', { timeout: 480_000 }, () => {
  it('uploads a backlog of 500 small files exactly once across a kill -9 and a restart', async () => {
    const s = await setup();
    const files = new Map<string, Buffer>();
    for (let bag = 0; bag < 5; bag++) {
      const name = `bag${bag}`;
      mkdirSync(path.join(s.root, name));
      for (let split = 0; split < 99; split++)
        files.set(`${name}/${name}_${split}.mcap`, syntheticMcap(1024 + ((bag * 99 + split) % 7) * 100));
      files.set(`${name}/metadata.yaml`, Buffer.from(`rosbag2_bagfile_information:\n  relative_file_paths: ${name}\n`));
    }
    for (const [remote, bytes] of files) writeFileSync(path.join(s.root, remote), bytes);
    const total = [...files.values()].reduce((sum, bytes) => sum + bytes.length, 0);

    const first = s.agent(['--quiet-period', '0.2']);
    await waitFor(() => s.proxy.completionsFor().length >= 150, '150 files uploaded before the crash', 120_000);
    first.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const beforeCrash = s.proxy.completionsFor().length;
    expect(beforeCrash).toBeLessThan(files.size);

    const second = s.agent(['--quiet-period', '0.2']);
    await waitFor(() => [...files.keys()].every((remote) => s.stored(remote)), 'every file on the server', 180_000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);

    for (const [remote, bytes] of files) {
      expect(s.stored(remote)?.equals(bytes), `${remote} byte-identical`).toBe(true);
      expect(s.proxy.completionsFor(remote).length, `${remote} completed once`).toBe(1);
    }
    // The data crossed the wire once; at most the uploads in flight at the crash were sent again:
    // 2 slots (maxConcurrentUploads) of up to 8 small files each (smallFilesPerSlot), under 2,000 bytes each.
    const sent = s.proxy.chunkBytesFor();
    expect(sent).toBeGreaterThanOrEqual(total);
    expect(sent - total).toBeLessThanOrEqual(2 * 8 * 2000);
    // metadata.yaml after every split of its bag, in both runs.
    for (let bag = 0; bag < 5; bag++) {
      const metadata = s.proxy.uploadsFor(`bag${bag}/metadata.yaml`).at(-1)!;
      const lastSplit = Math.max(
        ...[...Array(99).keys()].map((n) => s.proxy.completionsFor(`bag${bag}/bag${bag}_${n}.mcap`)[0]!.finishedAt!),
      );
      expect(metadata.startedAt).toBeGreaterThan(lastSplit);
    }
  });

  it('without a drain, stops within 5 s on SIGTERM mid-upload, and the next start completes the upload', async () => {
    const s = await setup();
    mkdirSync(path.join(s.root, 'big'));
    const bytes = syntheticMcap(6 * 1024 * 1024);
    writeFileSync(path.join(s.root, 'big', 'big_0.mcap'), bytes);
    writeFileSync(path.join(s.root, 'big', 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
    // The stop that follows the drain (test/cli/agent-drain.test.ts): what is left of the 5 s
    // ros2 launch allows between SIGTERM and SIGKILL.
    const args = ['--bandwidth-limit', '1MiB', '--chunk-size', '1MiB', '--quiet-period', '0.2', '--drain-timeout', '0'];
    const first = s.agent(args);
    await waitFor(() => s.proxy.chunkBytesFor('big/big_0.mcap') >= 1024 * 1024, 'the upload under way', 60_000);
    const signalled = performance.now();
    first.kill('SIGTERM');
    const exit = await first.exited;
    const stoppedIn = performance.now() - signalled;
    expect(exit.code, first.stderr).toBe(0);
    // ros2 launch sends SIGKILL 5 s after SIGTERM.
    expect(stoppedIn).toBeLessThan(5000);
    expect(s.stored('big/big_0.mcap')).toBeUndefined();
    const sentBefore = s.proxy.chunkBytesFor('big/big_0.mcap');

    const second = s.agent(args);
    await waitFor(() => s.stored('big/metadata.yaml'), 'the bag completed after the restart', 60_000);
    expect(s.stored('big/big_0.mcap')!.equals(bytes)).toBe(true);
    // It resumed: what the server had acknowledged was not sent again (at most the chunks in flight).
    expect(s.proxy.chunkBytesFor('big/big_0.mcap')).toBeLessThanOrEqual(bytes.length + 2 * 1024 * 1024);
    expect(sentBefore).toBeGreaterThan(0);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('watching a folder holding its own state and the bundled server storage uploads only the recordings', async () => {
    const dir = await createTempDir('agent-self');
    cleanups.push(() => dir.remove());
    const here = dir.path;
    const child = spawnAgent(
      ['watch', '.', '--state-dir', './state', '--embedded-upload-dir', './uploads', '--quiet-period', '0.2'],
      { cwd: here },
    );
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await child.exited;
    });
    await waitFor(() => child.stderr.includes('watching for recordings'), 'the agent watching', 30_000);
    mkdirSync(path.join(here, 'run1'));
    const bytes = syntheticMcap(5000);
    writeFileSync(path.join(here, 'run1', 'run1_0.mcap'), bytes);
    writeFileSync(path.join(here, 'run1', 'metadata.yaml'), 'x: 1\n');
    const completed = path.join(here, 'uploads', 'completed', 'anonymous');
    await waitFor(() => existsSync(path.join(completed, 'run1', 'metadata.yaml')), 'the bag uploaded', 30_000);
    // Give a feedback loop (uploading its own storage or journal) the time to show.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    expect(readdirSync(completed)).toEqual(['run1']);
    expect(readdirSync(path.join(completed, 'run1')).sort()).toEqual(['metadata.yaml', 'run1_0.mcap']);
    expect(readFileSync(path.join(completed, 'run1', 'run1_0.mcap')).equals(bytes)).toBe(true);
  });
});
