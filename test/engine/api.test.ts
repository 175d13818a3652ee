import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { NetworkManager as FromPackageRoot } from '../../index.js';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { createUploadServer, type UploadServer } from '../../server/index.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { EventLog, KiB, createWorld, waitForCompletion, type EngineWorld } from './harness.js';

const silent = pino({ level: 'silent' });

describe("NetworkManager API (the Python dashboard's knobs in camelCase)", () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await createTempDir('engine-api');
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('is exported from the package root', () => {
    expect(FromPackageRoot).toBe(NetworkManager);
  });

  it("takes the legacy deployment guide's settings: upload URL with /upload, timeouts, retries, bandwidth", () => {
    const manager = new NetworkManager({
      serverUrl: 'https://yourserver.com:8080/upload',
      stateDir: dir.path,
      logger: silent,
    });
    expect(manager.serverUrl).toBe('https://yourserver.com:8080/upload');
    expect([
      manager.uploadTimeout,
      manager.initTimeout,
      manager.stalledTimeout,
      manager.maxRetries,
      manager.maxConcurrentUploads,
      manager.bandwidthLimit,
      manager.chunkSize,
    ]).toEqual([300, 10, 60, 5, 2, 0, 8 * 1024 * 1024]);
    manager.uploadTimeout = 600;
    manager.stalledTimeout = 120;
    manager.maxRetries = 3;
    manager.bandwidthLimit = 1024 * 1024;
    manager.maxConcurrentUploads = 4;
    expect(manager.options).toMatchObject({
      uploadTimeout: 600,
      stalledTimeout: 120,
      maxRetries: 3,
      bandwidthLimit: 1024 * 1024,
      maxConcurrentUploads: 4,
    });
    manager.setOptions({ bandwidth_limit: '2MiB', 'chunk-size': '1MiB', initTimeout: '30s' });
    // The Python client's snake_case names work too.
    const pythonStyle = new NetworkManager({
      upload_url: 'http://127.0.0.1:9/upload',
      max_retries: 3,
      stateDir: dir.path,
      logger: silent,
    } as never);
    expect(pythonStyle.options).toMatchObject({ serverUrl: 'http://127.0.0.1:9/upload', maxRetries: 3 });
    expect(manager.options).toMatchObject({ bandwidthLimit: 2 * 1024 * 1024, chunkSize: 1024 * 1024, initTimeout: 30 });
  });

  it('refuses bad settings with a message naming the option, and keeps the old value', () => {
    const manager = new NetworkManager({ stateDir: dir.path, logger: silent });
    expect(() => (manager.maxRetries = -1)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('maxRetries') }),
    );
    expect(manager.maxRetries).toBe(5);
    expect(() => manager.setOption('bandwidthLimit', 'fast')).toThrow(/bandwidthLimit/);
    expect(() => manager.setOptions({ noSuchOption: 1 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_UNKNOWN_OPTION' }),
    );
    expect(() => new NetworkManager({ serverUrl: 'ftp://x' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => new NetworkManager({ chunkSize: 10 })).toThrow(/chunkSize/);
  });

  it('addUpload refuses a missing file, a bad priority and an unsafe remote path, naming the problem', async () => {
    const manager = new NetworkManager({ stateDir: dir.path, logger: silent });
    await expect(manager.addUpload(path.join(dir.path, 'nope.bin'))).rejects.toMatchObject({
      code: 'LOCAL_FILE_NOT_FOUND',
      message: expect.stringContaining('nope.bin'),
    });
    await expect(manager.addUpload(__filename, { priority: 0 })).rejects.toMatchObject({
      code: 'INVALID_FIELD',
      message: expect.stringContaining('priority'),
    });
    await expect(manager.addUpload(__filename, { priority: 11 })).rejects.toMatchObject({ code: 'INVALID_FIELD' });
    await expect(manager.addUpload(__filename, { remotePath: '../x' })).rejects.toMatchObject({ code: 'INVALID_PATH' });
    await expect(manager.addUpload(__filename, { remotePath: '/abs/x' })).rejects.toMatchObject({
      code: 'INVALID_PATH',
    });
    await manager.stop();
  });

  it('a second manager on the same state directory is refused', async () => {
    const first = new NetworkManager({ stateDir: dir.path, logger: silent });
    await first.addUpload(__filename);
    const second = new NetworkManager({ stateDir: dir.path, logger: silent });
    await expect(second.addUpload(__filename)).rejects.toMatchObject({ code: 'STATE_DIR_LOCKED' });
    await first.stop();
    await second.addUpload(__filename);
    await second.stop();
  });

  it('new NetworkManager() with no arguments talks to the local server on its default address', async () => {
    const home = process.env.HOME;
    process.env.HOME = dir.path; // the default stateDir is under ~
    let server: UploadServer | undefined;
    try {
      const manager = new NetworkManager();
      expect(manager.serverUrl).toBe('http://127.0.0.1:8080');
      expect(manager.options.stateDir).toBe(path.join(dir.path, '.local/state/ros2-upload-agent'));
      try {
        server = await createUploadServer({
          uploadDir: path.join(dir.path, 'uploads'),
          logLevel: 'silent',
          rateLimit: false,
        });
      } catch (error) {
        console.info(
          `[engine] port 8080 is busy on this machine ` +
            `(${(error as Error).message}); only the derived address was checked`,
        );
        return;
      }
      await manager.start();
      const id = await manager.addUpload(__filename, { remotePath: 'default/api.test.ts' });
      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toMatch(/^[0-9a-f]{64}$/);
      await manager.stop();
    } finally {
      process.env.HOME = home;
      await server?.close();
    }
  });
});

describe('NetworkManager status, events and transfer compression', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('reports typed events and snapshots from queued to completed', async () => {
    const file = await world.randomFile('bag1/bag1_0.mcap', 600 * KiB);
    const manager = world.manager({ chunkSize: 128 * KiB, bandwidthLimit: 1024 * KiB });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, {
      remotePath: 'bag1/bag1_0.mcap',
      priority: 2,
      metadata: { robot: 'r1' },
    });
    const queued = log.of('queued')[0]!;
    expect(queued).toMatchObject({
      id,
      state: 'queued',
      priority: 2,
      bagName: 'bag1',
      bytesTotal: file.size,
      metadata: { robot: 'r1' },
      remotePath: 'bag1/bag1_0.mcap',
    });
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(done.deduplicated).toBe(false);
    expect(done.duration).toBeGreaterThan(0);
    expect(log.of('started').map((s) => s.id)).toEqual([id]);
    const progress = log.of('progress');
    expect(progress.length).toBeGreaterThan(3);
    for (let i = 1; i < progress.length; i += 1)
      expect(progress[i]!.bytesSent).toBeGreaterThanOrEqual(progress[i - 1]!.bytesSent);
    expect(progress.some((p) => p.rate > 0 && p.etaSeconds !== undefined)).toBe(true);
    const states = log.of('state').map((s) => s.state);
    expect(states[0]).toBe('queued');
    expect(states).toContain('uploading');
    expect(states.at(-1)).toBe('completed');
    const snapshot = manager.status().find((s) => s.id === id)!;
    expect(snapshot).toMatchObject({
      state: 'completed',
      bytesSent: file.size,
      sha256: file.sha256,
      lastError: undefined,
    });
    expect(snapshot.finishedAt).toBeDefined();
    expect(manager.bytesPending).toBe(0);
    expect(manager.completedFile(file.path)).toMatchObject({
      sha256: file.sha256,
      size: file.size,
      remotePath: 'bag1/bag1_0.mcap',
    });
  });

  it('uploads an empty file', async () => {
    const file = await world.writeFile('empty.bin', Buffer.alloc(0));
    const manager = world.manager();
    await manager.start();
    const done = await waitForCompletion(manager, await manager.addUpload(file.path, { remotePath: 'empty.bin' }));
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('empty.bin')).toBe(file.sha256);
  });

  it('gzips compressible files on the wire when transferCompression is on, never .zstd files', async () => {
    const text = Buffer.from('/tf /odom /scan sensor_msgs/msg/LaserScan '.repeat(40_000));
    const file = await world.writeFile('log.db3', text);
    const zstd = await world.writeFile('log.db3.zstd', text);
    const manager = world.manager({ transferCompression: true, chunkSize: 256 * KiB });
    await manager.start();
    const plain = await waitForCompletion(manager, await manager.addUpload(file.path, { remotePath: 'gz/log.db3' }));
    expect(plain.sha256).toBe(file.sha256);
    expect(await world.storedSha('gz/log.db3')).toBe(file.sha256);
    const compressedBytes = world.proxy.stats.bytesUp;
    expect(compressedBytes).toBeLessThan(text.length / 4);
    await waitForCompletion(manager, await manager.addUpload(zstd.path, { remotePath: 'gz/log.db3.zstd' }));
    expect(world.proxy.stats.bytesUp - compressedBytes).toBeGreaterThan(text.length);
    expect(await world.storedSha('gz/log.db3.zstd')).toBe(zstd.sha256);
  });
});
