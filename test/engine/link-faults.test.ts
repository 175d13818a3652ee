import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog, KiB, MiB, createWorld, waitForCompletion, type EngineWorld } from './harness.js';

/** HTTP headers and JSON requests around the chunk bodies (create, complete, status checks). */
const OVERHEAD_PER_REQUEST = 1024;

describe('NetworkManager over a faulty link (real server, TCP fault proxy)', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('completes when connections drop mid-chunk again and again, re-sending no more than was in flight', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('drops.bin', 3 * MiB + 4321);
    world.proxy.setFaults({ dropAfter: { bytes: 400_000, times: 6 } });
    const manager = world.manager({ chunkSize });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/drops.bin' });
    const done = await waitForCompletion(manager, id);

    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('faults/drops.bin')).toBe(file.sha256);
    expect(world.proxy.stats.drops).toBe(6);
    expect(log.count('retrying')).toBeGreaterThanOrEqual(6);
    expect(log.count('failed')).toBe(0);
    // Every drop cut at most the one chunk in flight.
    const resent = world.proxy.stats.bytesUp - file.size;
    const requests = Math.ceil(file.size / chunkSize) + log.count('retrying') * 2 + 4;
    expect(resent).toBeLessThanOrEqual(world.proxy.stats.drops * chunkSize + requests * OVERHEAD_PER_REQUEST);
    console.info(
      `[engine] ${world.proxy.stats.drops} drops: re-sent ${resent} B ` +
        `in all (chunk ${chunkSize} B, ${log.count('retrying')} retries)`,
    );
  });

  it('aborts a stalled connection after stalledTimeout, retries and completes', async () => {
    const file = await world.randomFile('stall.bin', 2 * MiB);
    world.proxy.setFaults({ stallAfter: { bytes: 300_000, times: 1 } });
    const manager = world.manager({ chunkSize: 256 * KiB, stalledTimeout: 0.5 });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/stall.bin' });
    const done = await waitForCompletion(manager, id);

    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('faults/stall.bin')).toBe(file.sha256);
    expect(world.proxy.stats.stalls).toBe(1);
    expect(log.count('stalled')).toBe(1);
    const retry = log.of('retrying')[0]!;
    expect(retry.reason).toMatch(/no bytes moved/);
    expect(retry.attempt).toBe(2);
    expect(log.count('failed')).toBe(0);
  });

  it('catches a flipped bit: the server refuses the chunk, it is re-sent, the file is intact', async () => {
    const file = await world.randomFile('flip.bin', 1 * MiB);
    // Connection offset 200 000 lies inside the first chunk's body (create and headers are < 2 KiB).
    world.proxy.setFaults({ flipBitAt: { offset: 200_000, bit: 3, times: 1 } });
    const manager = world.manager({ chunkSize: 256 * KiB });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/flip.bin' });
    const done = await waitForCompletion(manager, id);

    expect(world.proxy.stats.flips).toBe(1);
    const retries = log.of('retrying');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.reason).toContain('CHUNK_CHECKSUM_MISMATCH');
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('faults/flip.bin')).toBe(file.sha256);
  });

  it('adds latency without breaking anything', async () => {
    const file = await world.randomFile('slow.bin', 600 * KiB);
    world.proxy.setFaults({ delayMs: 30 });
    const manager = world.manager({ chunkSize: 128 * KiB });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'faults/slow.bin' });
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('faults/slow.bin')).toBe(file.sha256);
  });
});
