import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEGACY_CHUNK_SIZE } from '../../agent/engine/transport/legacy-client.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { spawnEngineRunner, type EngineRunnerProcess } from '../helpers/engine-runner.js';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
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

/** Headers, multipart framing and JSON requests besides chunk bodies, per request, generously. */
const OVERHEAD_PER_REQUEST = 2 * KiB;

function md5Of(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** The warn line the engine logs for a legacy-only server. */
function legacyWarnings(logs: ReturnType<typeof captureLogger>): Record<string, unknown>[] {
  return logs
    .entries()
    .filter((entry) => entry.level === 40 && String(entry.msg).includes('only offers the legacy (v0) dashboard API'));
}

describe('the agent against a server that only offers the legacy API (--no-native-api)', () => {
  let world: EngineWorld;
  let front: HttpFaultFront | undefined;
  beforeEach(async () => {
    world = await createWorld({ nativeApi: false });
  });
  afterEach(async () => {
    await world.close();
    await front?.close();
    front = undefined;
  });

  it('uploads a split bag completely and byte-identically through init/chunk/finalize, warning once', async () => {
    const logs = captureLogger('info');
    front = await HttpFaultFront.start({ target: `http://127.0.0.1:${world.proxy.port}` });
    const manager = world.manager({ serverUrl: front.url, logger: logs.logger });
    const events = new EventLog(manager);
    await manager.start();
    // Splits of 2.4 legacy chunks, exactly one, a small one and an empty one, then the metadata.
    const splits = [
      await world.randomFile('bag/bag_0.mcap', 2 * LEGACY_CHUNK_SIZE + 400 * KiB),
      await world.randomFile('bag/bag_1.mcap', LEGACY_CHUNK_SIZE),
      await world.randomFile('bag/bag_2.mcap', 300 * KiB),
      await world.writeFile('bag/bag_3.mcap', Buffer.alloc(0)),
      await world.writeFile('bag/metadata.yaml', Buffer.from('rosbag2_bagfile_information:\n  version: 5\n')),
    ];
    const ids: string[] = [];
    for (const split of splits) {
      ids.push(await manager.addUpload(split.path, { remotePath: `bag/${path.basename(split.path)}` }));
    }
    for (const [n, id] of ids.entries()) {
      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toBe(splits[n]!.sha256);
    }
    for (const split of splits) {
      const stored = await readFile(world.server.completedPath('anonymous', `bag/${path.basename(split.path)}`));
      expect(Buffer.compare(stored, await readFile(split.path))).toBe(0);
    }
    // Through the legacy routes only, in 5 MiB chunks: 3 + 1 + 1 + 1 + 1.
    expect(front.requests('POST', /^\/upload\/init$/)).toHaveLength(5);
    expect(front.requests('POST', /^\/upload\/chunk$/)).toHaveLength(7);
    expect(front.requests('POST', /^\/upload\/finalize$/)).toHaveLength(5);
    // The native protocol is tried first: only the uploads that began before the answer (2 at a
    // time) met a 404 there (a create, or a whole-file PUT and then a create), then one /health
    // for the target, not one per file.
    const native = front.log.filter((entry) => entry.path.startsWith('/v1/'));
    expect(native.length).toBeGreaterThanOrEqual(1);
    expect(native.length).toBeLessThanOrEqual(4);
    expect(native.every((entry) => entry.status === 404)).toBe(true);
    expect(front.requests('GET', /^\/health$/)).toHaveLength(1);
    // One warning naming the fix.
    const warnings = legacyWarnings(logs);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.msg)).toMatch(/MD5/);
    expect(String(warnings[0]!.msg)).toMatch(/upgrade the server|native API/);
    expect(events.count('failed')).toBe(0);
  });

  it('re-sends every chunk when a chunk was damaged on the way (MD5 at finalize), and the file verifies', async () => {
    const file = await world.randomFile('damaged.bin', 2 * LEGACY_CHUNK_SIZE + 100 * KiB);
    // Connection offset 1 MiB lies inside the first chunk's body (health, init and the form's head are < 2 KiB).
    world.proxy.setFaults({ flipBitAt: { offset: 1 * MiB, bit: 5, times: 1 } });
    const logs = captureLogger('info');
    const manager = world.manager({ logger: logs.logger });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/damaged.bin' });
    const done = await waitForCompletion(manager, id);

    expect(world.proxy.stats.flips).toBe(1);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('faults/damaged.bin')).toBe(file.sha256);
    const repair = logs.entries().filter((entry) => String(entry.msg).includes('re-sending chunks'));
    expect(repair).toHaveLength(1);
    expect(repair[0]!.missing).toEqual([0, 1, 2]);
    // The whole file went twice (the legacy API cannot say which chunk was damaged), not more.
    expect(world.proxy.stats.bytesUp).toBeGreaterThan(2 * file.size);
    expect(world.proxy.stats.bytesUp).toBeLessThan(2 * file.size + 20 * OVERHEAD_PER_REQUEST);
  });

  it('an agent restarted mid-file resumes the legacy upload from the chunks the server holds', async () => {
    const file = await world.randomFile('restart.bin', 3 * LEGACY_CHUNK_SIZE);
    const stateDir = path.join(world.dir.path, 'state-restart');
    front = await HttpFaultFront.start({ target: `http://127.0.0.1:${world.proxy.port}` });
    const first = world.manager({ serverUrl: front.url, stateDir, bandwidthLimit: 4 * MiB, stopTimeout: 0.2 });
    await first.start();
    const id = await first.addUpload(file.path, { remotePath: 'recovery/restart.bin' });
    // The server stored the first chunk (its answer left the front): the journal holds the upload_id.
    await waitFor(
      () => front!.requests('POST', /^\/upload\/chunk$/).some((entry) => entry.status === 200),
      'the first chunk stored',
    );
    await first.stop();
    const sentByFirst = world.proxy.stats.bytesUp;
    expect(sentByFirst).toBeLessThan(file.size);

    // A new engine on the same state directory: the journal's upload_id and the server's status.
    const logs = captureLogger('info');
    const second = world.manager({ serverUrl: front.url, stateDir, logger: logs.logger });
    await second.start();
    const done = await waitForCompletion(second, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('recovery/restart.bin')).toBe(file.sha256);
    expect(logs.entries().some((entry) => String(entry.msg).startsWith('resuming recovery/restart.bin'))).toBe(true);
    // At most the chunk in flight at the stop was sent twice.
    expect(world.proxy.stats.bytesUp - file.size).toBeLessThanOrEqual(LEGACY_CHUNK_SIZE + 20 * OVERHEAD_PER_REQUEST);
  });

  it('killed with -9 mid-file, the agent finishes it after a restart (re-sending at most one chunk)', async () => {
    const file = await world.randomFile('kill.bin', 3 * LEGACY_CHUNK_SIZE + 1000);
    front = await HttpFaultFront.start({ target: `http://127.0.0.1:${world.proxy.port}` });
    const spec = {
      options: {
        ...fastOptions,
        serverUrl: front.url,
        stateDir: path.join(world.dir.path, 'runner-state'),
        bandwidthLimit: 4 * MiB,
      },
      uploads: [{ file: file.path, remotePath: 'recovery/kill.bin' }],
    };
    const first = spawnEngineRunner(spec);
    let second: EngineRunnerProcess | undefined;
    try {
      // Killed once the server stored a chunk and the next one is on its way.
      await waitFor(
        () =>
          front!.requests('POST', /^\/upload\/chunk$/).some((entry) => entry.status === 200) &&
          world.proxy.stats.bytesUp >= LEGACY_CHUNK_SIZE + 1 * MiB,
        'a chunk stored and the next one half-way',
        75_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      const firstBytes = world.proxy.stats.bytesUp;
      expect(firstBytes).toBeLessThan(file.size);

      second = spawnEngineRunner({ ...spec, options: { ...spec.options, bandwidthLimit: 0 } });
      expect(await second.exited, second.stderr()).toBe(0);
      const completed = second.lines.find((line) => line.event === 'completed');
      expect(completed?.sha256).toBe(file.sha256);
      expect(await world.storedSha('recovery/kill.bin')).toBe(file.sha256);
      const resent = world.proxy.stats.bytesUp - file.size;
      expect(resent).toBeLessThanOrEqual(LEGACY_CHUNK_SIZE + 20 * OVERHEAD_PER_REQUEST);
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
  }, 180_000);

  it('does not count a file as uploaded when finalize answers another MD5 or size', async () => {
    const file = await world.randomFile('mismatch.bin', LEGACY_CHUNK_SIZE + 10 * KiB);
    const md5 = md5Of(await readFile(file.path));
    front = await HttpFaultFront.start({ target: `http://127.0.0.1:${world.proxy.port}` });
    const lies = [
      { success: true, upload_id: 'x', checksum: '0'.repeat(32), size: file.size },
      { success: true, upload_id: 'x', checksum: md5, size: file.size - 1 },
    ];
    let lying = true;
    front.inject((request, count) =>
      lying && request.method === 'POST' && request.url === '/upload/finalize'
        ? { status: 200, body: lies[count % lies.length] }
        : undefined,
    );
    const manager = world.manager({ serverUrl: front.url, maxRetries: 2 });
    const events = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/mismatch.bin' });
    await waitFor(() => front!.requests('POST', /^\/upload\/finalize$/).length >= 4, 'finalize answered four times');
    expect(manager.upload(id)?.state).not.toBe('completed');
    expect(events.count('completed')).toBe(0);
    const reasons = events.of('retrying').map((retry) => retry.reason);
    expect(reasons.some((reason) => /ANSWER_MISMATCH|answered for another file: MD5/.test(reason))).toBe(true);
    expect(reasons.some((reason) => /size 5253119 \(sent: 5253120\)/.test(reason))).toBe(true);

    lying = false;
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(events.count('completed')).toBe(1);
    expect(await world.storedSha('faults/mismatch.bin')).toBe(file.sha256);
  });
});

describe('the agent against a normal server', () => {
  let world: EngineWorld;
  let front: HttpFaultFront;
  beforeEach(async () => {
    world = await createWorld();
    front = await HttpFaultFront.start({ target: `http://127.0.0.1:${world.proxy.port}` });
  });
  afterEach(async () => {
    await world.close();
    await front.close();
  });

  it('uses the native protocol without asking /health at all', async () => {
    const logs = captureLogger('info');
    const manager = world.manager({ serverUrl: front.url, logger: logs.logger });
    await manager.start();
    const files = [
      await world.randomFile('n/a.bin', 3 * MiB),
      await world.randomFile('n/b.bin', 200 * KiB),
      await world.randomFile('n/c.bin', 2 * MiB),
    ];
    const ids = await Promise.all(
      files.map((file) => manager.addUpload(file.path, { remotePath: `native/${path.basename(file.path)}` })),
    );
    for (const [n, id] of ids.entries()) expect((await waitForCompletion(manager, id)).sha256).toBe(files[n]!.sha256);
    expect(front.requests('GET', /^\/health$/)).toHaveLength(0);
    expect(front.requests('POST', /^\/v1\/sessions$/)).toHaveLength(2);
    expect(front.log.filter((entry) => entry.path.startsWith('/upload'))).toHaveLength(0);
    expect(legacyWarnings(logs)).toHaveLength(0);
  });

  it('asks /health when a native create answers 404 ROUTE_NOT_FOUND, and then uses the legacy API', async () => {
    const logs = captureLogger('info');
    const manager = world.manager({ serverUrl: front.url, logger: logs.logger });
    await manager.start();
    const first = await world.randomFile('switch/first.bin', 2 * MiB);
    await waitForCompletion(manager, await manager.addUpload(first.path, { remotePath: 'switch/first.bin' }));
    expect(front.requests('GET', /^\/health$/)).toHaveLength(0);

    // The server behind the same address now offers only the legacy API (ours serves both, so the
    // front answers as a legacy-only one would: /health without `protocol`, no native routes).
    front.inject((request) => {
      if (request.method === 'GET' && request.url === '/health')
        return {
          status: 200,
          body: { status: 'ok', timestamp: new Date().toISOString(), version: '2.0', features: [] },
        };
      if (request.url?.startsWith('/v1/'))
        return { status: 404, body: { success: false, error: 'Not found', code: 'ROUTE_NOT_FOUND' } };
      return undefined;
    });
    const second = await world.randomFile('switch/second.bin', 2 * MiB);
    const done = await waitForCompletion(
      manager,
      await manager.addUpload(second.path, { remotePath: 'switch/second.bin' }),
    );
    expect(done.sha256).toBe(second.sha256);
    expect(await world.storedSha('switch/second.bin')).toBe(second.sha256);
    expect(front.requests('GET', /^\/health$/)).toHaveLength(1);
    expect(front.requests('POST', /^\/v1\/sessions$/).filter((entry) => entry.injected)).toHaveLength(1);
    expect(front.requests('POST', /^\/upload\/finalize$/)).toHaveLength(1);
    expect(legacyWarnings(logs)).toHaveLength(1);
  });
});
