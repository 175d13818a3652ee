import { open, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import vm from 'node:vm';
import v8 from 'node:v8';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkBuffers } from '../../agent/engine/source/chunk-buffers.js';
import { RecordingProxy, type ProxiedRequest } from '../cli/support/recording-proxy.js';
import { spawnEngineRunner, type EngineRunnerProcess } from '../helpers/engine-runner.js';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
import { sha256Of } from '../helpers/random-file.js';
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

/** The chunk PUTs a recording proxy saw for one remote path, with their index. */
function chunkPuts(proxy: RecordingProxy, remotePath: string): (ProxiedRequest & { index: number })[] {
  return proxy
    .chunkRequestsFor(remotePath)
    .filter((r) => /\/chunks\/\d+$/.test(r.url))
    .map((r) => ({ ...r, index: Number(/\/chunks\/(\d+)$/.exec(r.url)![1]) }));
}

/**
 * Full garbage collections (V8's gc(), exposed at run time for this measurement). V8 frees the
 * memory of dead ArrayBuffers on a background thread after a collection, so it collects a few
 * times with pauses in between before memory is measured.
 */
async function collectGarbage(): Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let round = 0; round < 3; round += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('read-ahead: the next chunk is read while one is on the wire', () => {
  let world: EngineWorld;
  let recorder: RecordingProxy;
  beforeEach(async () => {
    world = await createWorld();
    recorder = await RecordingProxy.start(world.proxy.url());
  });
  afterEach(async () => {
    await recorder.close();
    await world.close();
  });

  it('maxChunksInFlight 1: one chunk at a time; killed with -9, restarted, re-sends at most that chunk', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('read-ahead-kill.bin', 4 * MiB);
    const remote = 'ahead/kill.bin';
    const spec = {
      options: {
        ...fastOptions,
        serverUrl: recorder.url,
        stateDir: path.join(world.dir.path, 'runner-state'),
        chunkSize,
        bandwidthLimit: 768 * KiB,
        maxChunksInFlight: 1,
      },
      uploads: [{ file: file.path, remotePath: remote }],
    };
    const first = spawnEngineRunner(spec);
    let second: EngineRunnerProcess | undefined;
    try {
      // Killed while a chunk body is on the wire (after 6.5 chunks reached the server).
      await waitFor(
        () => world.proxy.stats.bytesUp >= 6.5 * chunkSize,
        'the first run half-way through chunk 7',
        40_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      second = spawnEngineRunner({ ...spec, options: { ...spec.options, bandwidthLimit: 0 } });
      expect(await second.exited, second.stderr()).toBe(0);
      expect(second.lines.find((l) => l.event === 'completed')?.sha256).toBe(file.sha256);
      expect(await world.storedSha(remote)).toBe(file.sha256);
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
    const puts = chunkPuts(recorder, remote);
    // Every chunk was acknowledged exactly once...
    const acknowledged = puts.filter((r) => r.status === 200).map((r) => r.index);
    expect(acknowledged.sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    // ...and besides those, one chunk request was cut by the kill: the one in flight. None was sent
    // for a chunk the server had acknowledged.
    const unanswered = puts.filter((r) => r.status !== 200);
    expect(unanswered.length).toBeLessThanOrEqual(1);
    for (const cut of unanswered)
      expect(puts.filter((r) => r.index === cut.index && r.status === 200)[0]!.startedAt).toBeGreaterThan(
        cut.startedAt,
      );
    // One chunk at a time: no chunk request began before the one before it was answered.
    const byStart = [...puts].sort((a, b) => a.startedAt - b.startedAt);
    for (let n = 1; n < byStart.length; n += 1) {
      if (byStart[n - 1]!.finishedAt !== undefined)
        expect(byStart[n]!.startedAt).toBeGreaterThanOrEqual(byStart[n - 1]!.finishedAt!);
    }
  }, 90_000);

  it('pipelined: killed with -9 and restarted, re-sends at most the chunks that were in flight', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('pipelined-kill.bin', 4 * MiB);
    const remote = 'ahead/pipelined-kill.bin';
    const spec = {
      options: {
        ...fastOptions,
        uploadUrl: recorder.url,
        stateDir: path.join(world.dir.path, 'runner-state'),
        chunkSize,
        bandwidthLimit: 768 * KiB,
        maxChunksInFlight: 4,
      },
      uploads: [{ file: file.path, remotePath: remote }],
    };
    const first = spawnEngineRunner(spec);
    let second: EngineRunnerProcess | undefined;
    try {
      // Killed while a chunk body is on the wire (after 6.5 chunks reached the server).
      await waitFor(
        () => world.proxy.stats.bytesUp >= 6.5 * chunkSize,
        'the first run half-way through chunk 7',
        40_000,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      second = spawnEngineRunner({ ...spec, options: { ...spec.options, bandwidthLimit: 0 } });
      expect(await second.exited, second.stderr()).toBe(0);
      expect(second.lines.find((l) => l.event === 'completed')?.sha256).toBe(file.sha256);
      expect(await world.storedSha(remote)).toBe(file.sha256);
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
    const puts = chunkPuts(recorder, remote);
    // Every chunk was acknowledged exactly once...
    const acknowledged = puts.filter((r) => r.status === 200).map((r) => r.index);
    expect(acknowledged.sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    // ...and besides those, only chunk requests cut by the kill, at most the window's worth; each
    // was sent again after the kill. None was sent for a chunk the server had acknowledged.
    const unanswered = puts.filter((r) => r.status !== 200);
    expect(unanswered.length).toBeLessThanOrEqual(4);
    for (const cut of unanswered)
      expect(puts.filter((r) => r.index === cut.index && r.status === 200)[0]!.startedAt).toBeGreaterThan(
        cut.startedAt,
      );
  }, 90_000);

  it('drops its chunk buffers while it waits; a chunk that reads differently again restarts the file', async () => {
    const front = await HttpFaultFront.start({ target: world.proxy.url() });
    try {
      const chunkSize = 256 * KiB;
      const file = await world.randomFile('changed-while-waiting.bin', 2 * MiB);
      // A whole-second mtime, so it can be put back exactly after the content changes.
      const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
      await utimes(file.path, mtime, mtime);
      const before = await stat(file.path);
      front.inject((req, count) =>
        req.method === 'PUT' && /\/chunks\/2$/.test(req.url ?? '') && count === 0
          ? {
              status: 503,
              headers: { 'retry-after': '1' },
              body: { success: false, error: 'busy', code: 'SERVER_UNAVAILABLE' },
            }
          : undefined,
      );
      const manager = world.manager({ serverUrl: front.url, chunkSize });
      const log = new EventLog(manager);
      await manager.start();
      const id = await manager.addUpload(file.path, { remotePath: 'ahead/changed.bin' });
      await waitFor(() => log.count('retrying') > 0, 'the 503 on chunk 3');
      // While it waits: change bytes of chunk 3 in place, keeping size and mtime (a stat cannot tell).
      const handle = await open(file.path, 'r+');
      await handle.write(Buffer.alloc(100, 0xee), 0, 100, 2 * chunkSize + 1000);
      await handle.close();
      await utimes(file.path, mtime, mtime);
      const after = await stat(file.path);
      expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
      const { readFile } = await import('node:fs/promises');
      const now = await readFile(file.path);

      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toBe(sha256Of(now));
      expect(await world.storedSha('ahead/changed.bin')).toBe(sha256Of(now));
      // The dropped chunk was read again, its CRC differed from the first read: the file restarted.
      expect(log.of('retrying').map((r) => r.reason)).toContainEqual(
        expect.stringMatching(/chunk 3 reads differently/),
      );
    } finally {
      await front.close();
    }
  });

  it('uploads waiting for a retry hold no chunk buffers: memory is bounded by the slots, not the queue', async () => {
    const front = await HttpFaultFront.start({ target: world.proxy.url() });
    const managers: ReturnType<EngineWorld['manager']>[] = [];
    try {
      // Every data request is refused for a long while: each upload sends one, then waits without its slot.
      front.inject((req) =>
        req.method === 'PUT'
          ? {
              status: 503,
              headers: { 'retry-after': '60' },
              body: { success: false, error: 'busy', code: 'SERVER_UNAVAILABLE' },
            }
          : undefined,
      );
      const chunkSize = 512 * KiB;
      const large = await Promise.all(
        [...Array(12).keys()].map((n) => world.randomFile(`wait-large-${n}.bin`, 3 * MiB)),
      );
      const small = await Promise.all(
        [...Array(150).keys()].map((n) => world.randomFile(`wait-small-${n}.bin`, 64 * KiB)),
      );
      await collectGarbage();
      const baseline = process.memoryUsage().arrayBuffers;
      const manager = world.manager({ serverUrl: front.url, chunkSize, maxConcurrentUploads: 2 });
      managers.push(manager);
      await manager.start();
      await manager.addUploads([
        ...large.map((file, n) => ({ filePath: file.path, options: { remotePath: `wait/large-${n}.bin` } })),
        ...small.map((file, n) => ({ filePath: file.path, options: { remotePath: `wait/small-${n}.bin` } })),
      ]);
      await waitFor(
        () => front.requests('PUT', /./).length >= large.length + small.length,
        'every upload refused once',
        60_000,
      );
      await waitFor(() => manager.status().every((upload) => upload.state === 'retrying'), 'every upload waiting');
      await collectGarbage();
      const held = process.memoryUsage().arrayBuffers - baseline;
      // Held at most by the two slots (2 × two chunk buffers); before, each waiting upload kept
      // its buffers: 12 × 2 × 512 KiB + 150 × 64 KiB ≈ 21 MiB.
      expect(held).toBeLessThan(3 * MiB);
      console.info(
        `[engine] ${large.length + small.length} uploads waiting: ${(held / MiB).toFixed(2)} MiB of buffers held`,
      );
    } finally {
      await Promise.all(managers.map((manager) => manager.stop()));
      await front.close();
    }
  }, 120_000);

  it('a queued upload costs a record, not a runner: heap per queued file stays small', async () => {
    const files = await Promise.all([...Array(20).keys()].map((n) => world.randomFile(`queued-${n}.bin`, 1 * KiB)));
    const manager = world.manager();
    await manager.start();
    manager.pause();
    const count = 2000;
    await collectGarbage();
    const before = process.memoryUsage().heapUsed;
    const results = await manager.addUploads(
      [...Array(count).keys()].map((n) => ({
        filePath: files[n % files.length]!.path,
        options: { remotePath: `queue/q-${n}.bin` },
      })),
    );
    expect(results.every((result) => 'id' in result)).toBe(true);
    await waitFor(
      () => manager.status().filter((upload) => upload.state === 'paused').length === count,
      'every upload queued',
    );
    await collectGarbage();
    const perFile = (process.memoryUsage().heapUsed - before) / count;
    // A runner per queued file took over 5 KiB; a p-queue task per queued file about 3 KiB. The
    // backlog holds the records themselves (about 1.5 KiB: the record, its maps and journal keys).
    expect(perFile).toBeLessThan(2 * KiB);
    console.info(`[engine] ${count} queued uploads: ${(perFile / KiB).toFixed(2)} KiB of heap each`);
    await manager.stop();
  }, 60_000);
});

describe('ChunkBuffers', () => {
  it('hands out at most its limit of buffers, reuses given-back ones, and forgets them on clear()', () => {
    const buffers = new ChunkBuffers(1024, 2);
    const a = buffers.take(1024);
    const b = buffers.take(100);
    expect(b.length).toBe(100);
    expect(() => buffers.take(10)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    buffers.give(a);
    const c = buffers.take(512);
    expect(c.buffer).toBe(a.buffer);
    expect(buffers.allocated).toBe(2);
    expect(() => buffers.take(2048)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    buffers.clear();
    const d = buffers.take(1024);
    expect(d.buffer).not.toBe(a.buffer);
    expect(d.buffer).not.toBe(b.buffer);
    expect(buffers.allocated).toBe(1);
  });
});
