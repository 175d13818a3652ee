import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog, KiB, MiB, createWorld, waitForCompletion, type EngineWorld } from './harness.js';

describe('NetworkManager scheduling (real server through the proxy)', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('uploads three files concurrently, one of 200 MiB, byte-identical, with bounded memory', async () => {
    const files = await Promise.all([
      world.randomFile('big.bin', 200 * MiB),
      world.randomFile('medium.bin', 5 * MiB + 17),
      world.randomFile('empty.bin', 0),
    ]);
    const manager = world.manager({ maxConcurrentUploads: 3 });
    const log = new EventLog(manager);
    let peakBuffers = 0;
    const baseline = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(
      () => (peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers - baseline)),
      20,
    );
    await manager.start();
    const ids = await Promise.all(
      files.map((file) => manager.addUpload(file.path, { remotePath: `three/${file.path.split('/').pop()}` })),
    );
    const results = await Promise.all(ids.map((id) => waitForCompletion(manager, id, 110_000)));
    clearInterval(sampler);

    for (const [index, file] of files.entries()) {
      expect(results[index]!.sha256).toBe(file.sha256);
      expect(await world.storedSha(`three/${file.path.split('/').pop()}`)).toBe(file.sha256);
    }
    // All three were in flight at once.
    const started = log.of('started').map((s) => s.id);
    expect(new Set(started)).toEqual(new Set(ids));
    const firstDone = log.entries.findIndex((entry) => entry.event === 'completed');
    expect(log.entries.slice(0, firstDone).filter((entry) => entry.event === 'started')).toHaveLength(3);
    // Memory: about a chunk per upload in flight, never the file (the server shares this process).
    expect(peakBuffers).toBeLessThan(120 * MiB);
    console.info(`[engine] 3 files / 205 MiB: peak extra ArrayBuffer memory ${(peakBuffers / MiB).toFixed(1)} MiB`);
  }, 120_000);

  it('starts uploads by priority (1 first), FIFO within a priority', async () => {
    // One file per slot: each is verified before the next starts.
    const manager = world.manager({ maxConcurrentUploads: 1, smallFilesPerSlot: 1 });
    const log = new EventLog(manager);
    const plan: [string, number][] = [
      ['a', 5],
      ['b', 1],
      ['c', 5],
      ['d', 3],
      ['e', 1],
      ['f', 10],
      ['g', 3],
    ];
    const ids = new Map<string, string>();
    for (const [name] of plan) await world.randomFile(`${name}.bin`, 64 * KiB);
    // Queued before start(), so all of them compete for the one slot.
    for (const [name, priority] of plan)
      ids.set(
        await manager.addUpload(`${world.dir.path}/files/${name}.bin`, { priority, remotePath: `prio/${name}.bin` }),
        name,
      );
    await manager.start();
    await Promise.all([...ids.keys()].map((id) => waitForCompletion(manager, id)));
    expect(log.of('started').map((s) => ids.get(s.id))).toEqual(['b', 'e', 'd', 'g', 'a', 'c', 'f']);
    expect(log.of('completed').map((c) => ids.get(c.upload.id))).toEqual(['b', 'e', 'd', 'g', 'a', 'c', 'f']);
  });

  it('small files share a slot, next in queue order; a larger file takes its slot alone', async () => {
    const manager = world.manager({ maxConcurrentUploads: 1, smallFilesPerSlot: 3 });
    const log = new EventLog(manager);
    const plan: [string, number][] = [
      ['a', 64 * KiB],
      ['b', 64 * KiB],
      ['c', 64 * KiB],
      ['d', 64 * KiB],
      ['big', 2 * MiB],
      ['e', 64 * KiB],
    ];
    const files = new Map<string, { sha256: string }>();
    for (const [name, size] of plan) files.set(name, await world.randomFile(`${name}.bin`, size));
    const ids = new Map<string, string>();
    // At each start, what the others are (verified means its share of the slot was given back).
    const atStart = new Map<string, Map<string, string>>();
    manager.on('started', (upload) => {
      const states = new Map([...ids].map(([id, name]) => [name, manager.upload(id)?.state ?? 'unknown']));
      atStart.set(ids.get(upload.id)!, states);
    });
    // Queued before start(), so all of them wait in the backlog when the one slot is granted.
    for (const [name] of plan)
      ids.set(
        await manager.addUpload(`${world.dir.path}/files/${name}.bin`, { remotePath: `share/${name}.bin` }),
        name,
      );
    await manager.start();
    const results = await Promise.all([...ids.keys()].map((id) => waitForCompletion(manager, id)));
    for (const [index, name] of [...ids.values()].entries()) {
      expect(results[index]!.sha256).toBe(files.get(name)!.sha256);
      expect(await world.storedSha(`share/${name}.bin`)).toBe(files.get(name)!.sha256);
    }
    // Started in queue order.
    expect(log.of('started').map((s) => ids.get(s.id))).toEqual(plan.map(([name]) => name));
    const state = (when: string, of: string): string | undefined => atStart.get(when)?.get(of);
    // a, b and c together (three per slot): none was verified when c started.
    expect(['a', 'b'].map((name) => state('c', name))).toEqual(['uploading', 'uploading']);
    // d waited for the shared slot to be free: for all three.
    expect(['a', 'b', 'c'].map((name) => state('d', name))).toEqual(['completed', 'completed', 'completed']);
    // big (over 1 MiB) does not share: it started after d, and e after big (nothing rides past it).
    expect(state('big', 'd')).toBe('completed');
    expect(state('e', 'big')).toBe('completed');
  });

  it('two uploads share one bandwidth limit: their combined rate stays under it', async () => {
    const limit = 512 * KiB;
    const files = await Promise.all([
      world.randomFile('share-1.bin', 768 * KiB),
      world.randomFile('share-2.bin', 768 * KiB),
    ]);
    const manager = world.manager({ bandwidthLimit: limit, chunkSize: 128 * KiB, maxConcurrentUploads: 2 });
    const log = new EventLog(manager);
    const samples: { at: number; bytes: number }[] = [];
    const sampler = setInterval(() => samples.push({ at: performance.now(), bytes: world.proxy.stats.bytesUp }), 50);
    await manager.start();
    const ids = await Promise.all(
      files.map((file, i) => manager.addUpload(file.path, { remotePath: `share/${i}.bin` })),
    );
    await Promise.all(ids.map((id) => waitForCompletion(manager, id)));
    clearInterval(sampler);
    for (const [i, file] of files.entries()) expect(await world.storedSha(`share/${i}.bin`)).toBe(file.sha256);

    // Both uploads were sending at the same time.
    const progressIds = new Set(
      log
        .of('progress')
        .filter((p) => p.bytesSent > 0 && p.bytesSent < p.bytesTotal)
        .map((p) => p.upload.id),
    );
    expect(progressIds.size).toBe(2);
    // Bytes over the whole transfer and over every 1-s window (generous bounds; the benchmark measures accuracy).
    const first = samples.find((s) => s.bytes > 0)!;
    const last = samples.at(-1)!;
    const average = ((last.bytes - first.bytes) / (last.at - first.at)) * 1000;
    expect(average).toBeLessThanOrEqual(limit * 1.2);
    let worst = 0;
    for (const start of samples) {
      const end = samples.find((s) => s.at >= start.at + 1000);
      if (end) worst = Math.max(worst, ((end.bytes - start.bytes) / (end.at - start.at)) * 1000);
    }
    expect(worst).toBeLessThanOrEqual(limit * 1.5);
    console.info(
      `[engine] shared limit ${limit} B/s: average ${Math.round(average)} B/s ` +
        `(${((average / limit - 1) * 100).toFixed(1)}%), worst 1-s window ${Math.round(worst)} B/s`,
    );
  });

  it('a bandwidthLimit change applies to uploads already running', async () => {
    const file = await world.randomFile('change.bin', 3 * MiB);
    const manager = world.manager({ bandwidthLimit: 128 * KiB, chunkSize: 1 * MiB });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'share/change.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) > 64 * KiB, 'the first bytes');
    manager.bandwidthLimit = 0; // unlimited: the rest of a 1 MiB chunk goes at once, not at 128 KiB/s
    const done = await waitForCompletion(manager, id, 20_000);
    expect(done.sha256).toBe(file.sha256);
    expect(manager.bandwidthLimit).toBe(0);
  });
});

import { waitFor } from './harness.js';
