import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnEngineRunner, type EngineRunnerProcess } from '../helpers/engine-runner.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { sha256OfFile } from '../helpers/random-file.js';
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import {
  EventLog,
  KiB,
  MiB,
  createWorld,
  fastOptions,
  waitFor,
  waitForCompletion,
  type EngineWorld,
} from './harness.js';

/** Headers and JSON requests besides chunk bodies, per request, generously. */
const OVERHEAD_PER_REQUEST = 1024;

describe('NetworkManager recovery: stop/start, offline, agent and server crashes', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('stop() while uploading, then start() again: it completes, re-sending at most the chunk in flight', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('stop-start.bin', 2 * MiB);
    const manager = world.manager({ chunkSize, bandwidthLimit: 1 * MiB, stopTimeout: 0.2 });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'recovery/stop-start.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 600 * KiB, 'some chunks acknowledged');
    await manager.stop();
    expect(manager.started).toBe(false);
    expect(manager.upload(id)?.state).toBe('queued');
    const sentBeforeStop = world.proxy.stats.bytesUp;
    expect(sentBeforeStop).toBeLessThan(file.size);

    manager.bandwidthLimit = 0;
    await manager.start();
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('recovery/stop-start.bin')).toBe(file.sha256);
    expect(world.proxy.stats.bytesUp - file.size).toBeLessThanOrEqual(chunkSize + 30 * OVERHEAD_PER_REQUEST);
  });

  it('goes offline when the server cannot be reached, probes it, and resumes when it is back', async () => {
    const file = await world.randomFile('offline.bin', 2 * MiB);
    const manager = world.manager({ chunkSize: 256 * KiB, bandwidthLimit: 2 * MiB, maxRetries: 2 });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'recovery/offline.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 512 * KiB, 'some progress');
    await world.proxy.setDown(true);
    await waitFor(() => !manager.online, 'the manager to go offline', 30_000);
    expect(log.of('offline')[0]!.reason).toMatch(/refused|reset|closed/);
    expect(manager.upload(id)?.state).not.toBe('failed');
    await world.proxy.setDown(false);
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('recovery/offline.bin')).toBe(file.sha256);
    const order = log.entries
      .filter((e) => e.event === 'offline' || e.event === 'online' || e.event === 'completed')
      .map((e) => e.event);
    expect(order).toEqual(['offline', 'online', 'completed']);
    expect(log.count('failed')).toBe(0);
  });

  it('pause() lets the chunk in flight finish and starts no other; resume() completes', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('pause.bin', 2 * MiB);
    const manager = world.manager({ chunkSize, bandwidthLimit: 1 * MiB });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'recovery/pause.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 300 * KiB, 'progress');
    manager.pause();
    await waitFor(() => manager.upload(id)?.state === 'paused', 'the upload to pause after its chunk');
    const snapshot = manager.upload(id)!;
    expect(snapshot.bytesSent % chunkSize).toBe(0);
    const bytes = world.proxy.stats.bytesUp;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(world.proxy.stats.bytesUp).toBe(bytes);
    expect(manager.upload(id)!.bytesSent).toBe(snapshot.bytesSent);
    manager.resume();
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
  });

  it('the agent killed with -9 mid-upload resumes after a restart, re-sending only chunks in flight', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('kill.bin', 4 * MiB);
    const stateDir = path.join(world.dir.path, 'runner-state');
    const spec = {
      options: { ...fastOptions, serverUrl: world.proxy.url(), stateDir, chunkSize, bandwidthLimit: 512 * KiB },
      uploads: [{ file: file.path, remotePath: 'recovery/kill.bin' }],
    };
    const first = spawnEngineRunner(spec);
    let second: EngineRunnerProcess | undefined;
    try {
      // Kill it in the middle of a chunk: half of chunk 7 reached the server.
      await waitFor(
        () => world.proxy.stats.bytesUp >= 6.5 * chunkSize,
        'the first run to be half-way through chunk 7',
        75_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      const firstBytes = world.proxy.stats.bytesUp;
      expect(firstBytes).toBeLessThan(file.size);

      second = spawnEngineRunner({ ...spec, options: { ...spec.options, bandwidthLimit: 0 } });
      expect(await second.exited, second.stderr()).toBe(0);
      const completed = second.lines.find((l) => l.event === 'completed')!;
      expect(completed.sha256).toBe(file.sha256);
      expect(await world.storedSha('recovery/kill.bin')).toBe(file.sha256);
      const resent = firstBytes + (world.proxy.stats.bytesUp - firstBytes) - file.size;
      expect(resent).toBeLessThanOrEqual(chunkSize + 40 * OVERHEAD_PER_REQUEST);
      console.info(
        `[engine] kill -9: first run ${firstBytes} B, second run ` +
          `${world.proxy.stats.bytesUp - firstBytes} B, re-sent ${resent} B (chunk ${chunkSize} B)`,
      );
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
  }, 180_000);
});

describe('NetworkManager when the server is killed and restarted mid-upload', () => {
  let dir: TempDir;
  let proxy: FaultProxy | undefined;
  let server: ServerProcess | undefined;
  beforeEach(async () => {
    dir = await createTempDir('engine-server-crash');
  });
  afterEach(async () => {
    await server?.stop('SIGKILL');
    await proxy?.close();
    await dir.remove();
  });

  it('completes after the server comes back on the same storage', async () => {
    const uploadDir = path.join(dir.path, 'storage');
    const args = [
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--upload-dir',
      uploadDir,
      '--no-rate-limit',
      '--log-level',
      'info',
    ];
    server = await spawnServer(args);
    proxy = await FaultProxy.start({ port: Number(new URL(server.url).port) });
    const world = { dir: dir.path };
    const { writeRandomFile } = await import('../helpers/random-file.js');
    const local = path.join(world.dir, 'crash.bin');
    const sha = await writeRandomFile(local, 3 * MiB);
    const { NetworkManager } = await import('../../agent/engine/network-manager.js');
    const { pino } = await import('pino');
    const manager = new NetworkManager({
      ...fastOptions,
      serverUrl: proxy.url(),
      stateDir: path.join(dir.path, 'state'),
      chunkSize: 256 * KiB,
      bandwidthLimit: 1 * MiB,
      maxRetries: 2,
      logger: pino({ level: 'silent' }),
    });
    try {
      await manager.start();
      const id = await manager.addUpload(local, { remotePath: 'crash/crash.bin' });
      await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 768 * KiB, 'progress before the crash');
      server.child.kill('SIGKILL');
      await server.exited;
      await waitFor(() => manager.upload(id)?.state === 'retrying' || !manager.online, 'the engine to notice');
      server = await spawnServer(args);
      proxy.setTarget({ port: Number(new URL(server.url).port) });
      manager.bandwidthLimit = 0;
      const done = await waitForCompletion(manager, id, 60_000);
      expect(done.sha256).toBe(sha);
      expect(await sha256OfFile(path.join(uploadDir, 'completed', 'anonymous', 'crash', 'crash.bin'))).toBe(sha);
    } finally {
      await manager.stop();
    }
  }, 90_000);
});
