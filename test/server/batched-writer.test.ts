import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRITE_BATCH, writeBatched } from '../../server/storage/batched-writer.js';
import {
  FIRST_PAUSE_MS,
  LONGEST_PAUSE_MS,
  SLOW_WRITE_MS,
  SYNC_AFTER,
  SyncWritePolicy,
} from '../../server/storage/sync-write-policy.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await createTempDir('batched-writer');
});
afterAll(async () => {
  await dir?.remove();
});

async function* piecesOf(data: Buffer, sizes: number[]): AsyncIterable<Uint8Array> {
  let at = 0;
  for (let i = 0; at < data.length; i += 1) {
    const size = sizes[i % sizes.length]!;
    yield data.subarray(at, at + size);
    at += size;
  }
}

describe('writeBatched (the storage write path of every upload body)', () => {
  it('writes pieces of any size, tiny ones included, at an offset, byte-identical', async () => {
    const file = path.join(dir.path, 'a.bin');
    const prefix = randomBytes(1000);
    await writeFile(file, prefix);
    const data = randomBytes(3 * WRITE_BATCH + 12_345);
    const handle = await open(file, 'r+');
    try {
      // Pieces that straddle batch boundaries, tiny and empty ones included.
      const written = await writeBatched(
        handle,
        prefix.length,
        piecesOf(data, [1, 0, 7, 65_536, 3, 65_536, 65_536, 100_000]),
      );
      expect(written).toBe(data.length);
    } finally {
      await handle.close();
    }
    expect(Buffer.compare(await readFile(file), Buffer.concat([prefix, data]))).toBe(0);
  });

  it('keeps every stream byte-identical when more streams write at once than the pool has buffers for', async () => {
    const streams = Array.from({ length: 20 }, (_, i) => ({
      file: path.join(dir.path, `many-${i}.bin`),
      data: randomBytes(2 * WRITE_BATCH + i * 1000),
    }));
    await Promise.all(
      streams.map(async ({ file, data }) => {
        const handle = await open(file, 'w');
        try {
          expect(await writeBatched(handle, 0, piecesOf(data, [65_536, 1000]))).toBe(data.length);
        } finally {
          await handle.close();
        }
      }),
    );
    for (const { file, data } of streams) expect(Buffer.compare(await readFile(file), data)).toBe(0);
  });

  it("rejects with the source's error only after the write in flight settled, keeping what was written", async () => {
    const file = path.join(dir.path, 'b.bin');
    const data = randomBytes(2 * WRITE_BATCH);
    const handle = await open(file, 'w');
    async function* failing(): AsyncIterable<Uint8Array> {
      yield* piecesOf(data, [65_536]);
      throw new Error('the client went away');
    }
    try {
      await expect(writeBatched(handle, 0, failing())).rejects.toThrow('the client went away');
    } finally {
      await handle.close();
    }
    // Both full batches were written before the error surfaced (the second while it was thrown).
    expect(Buffer.compare(await readFile(file), data)).toBe(0);
  });

  it.each([
    ['synchronous writes', () => new SyncWritePolicy(undefined, 0)],
    ['writes through the pool', pausedPolicy],
  ])("rejects with the write's error (a handle opened read-only), with %s", async (_, policy) => {
    const file = path.join(dir.path, `c-${randomBytes(4).toString('hex')}.bin`);
    await writeFile(file, '');
    const handle = await open(file, 'r');
    try {
      await expect(
        writeBatched(handle, 0, piecesOf(randomBytes(3 * WRITE_BATCH), [65_536]), policy()),
      ).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      await handle.close();
    }
  });

  it('stays byte-identical across the switch to synchronous writes after the first MiB', async () => {
    const file = path.join(dir.path, 'switch.bin');
    const data = randomBytes(SYNC_AFTER + 3 * WRITE_BATCH + 999);
    const handle = await open(file, 'w');
    try {
      expect(await writeBatched(handle, 0, piecesOf(data, [65_536, 33, 100_000]))).toBe(data.length);
    } finally {
      await handle.close();
    }
    expect(Buffer.compare(await readFile(file), data)).toBe(0);
  });

  it('writes byte-identical through the pool while synchronous writes are paused', async () => {
    const file = path.join(dir.path, 'pool.bin');
    const data = randomBytes(5 * WRITE_BATCH + 777);
    const policy = pausedPolicy();
    expect(policy.allowed(SYNC_AFTER)).toBe(false);
    const handle = await open(file, 'w');
    try {
      expect(await writeBatched(handle, 0, piecesOf(data, [65_536, 5, 100_000]), policy)).toBe(data.length);
    } finally {
      await handle.close();
    }
    expect(Buffer.compare(await readFile(file), data)).toBe(0);
  });
});

/** A policy whose clock stands still right after a slow write: every write goes through the pool. */
function pausedPolicy(): SyncWritePolicy {
  const policy = new SyncWritePolicy(() => 0, 0);
  policy.took(SLOW_WRITE_MS + 1);
  return policy;
}

describe('SyncWritePolicy (synchronous writes while they are quick)', () => {
  function withClock(): { policy: SyncWritePolicy; at: (ms: number) => void } {
    let now = 0;
    return { policy: new SyncWritePolicy(() => now), at: (ms) => (now = ms) };
  }

  it("allows synchronous writes only past a stream's first SYNC_AFTER bytes", () => {
    const { policy } = withClock();
    expect(policy.allowed(0)).toBe(false);
    expect(policy.allowed(SYNC_AFTER - 1)).toBe(false);
    expect(policy.allowed(SYNC_AFTER)).toBe(true);
  });

  it('allows synchronous writes until one is slow, then sends writes to the pool for the first pause', () => {
    const { policy, at } = withClock();
    policy.took(SLOW_WRITE_MS); // at the limit: still quick
    expect(policy.allowed(SYNC_AFTER)).toBe(true);
    expect(policy.pauseMs).toBe(0);
    policy.took(SLOW_WRITE_MS + 0.5);
    expect(policy.pauseMs).toBe(FIRST_PAUSE_MS);
    expect(policy.allowed(SYNC_AFTER)).toBe(false);
    at(FIRST_PAUSE_MS - 1);
    expect(policy.allowed(SYNC_AFTER)).toBe(false);
    at(FIRST_PAUSE_MS);
    expect(policy.allowed(SYNC_AFTER)).toBe(true);
  });

  it('doubles the pause while slow writes come back soon after each pause, up to the longest', () => {
    const { policy, at } = withClock();
    let now = 0;
    const pauses: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      policy.took(SLOW_WRITE_MS * 10);
      pauses.push(policy.pauseMs);
      now += policy.pauseMs; // the first write after the pause is slow again
      at(now);
    }
    expect(pauses).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
    expect(Math.max(...pauses)).toBe(LONGEST_PAUSE_MS);
  });

  it('starts again from the first pause when the disk was quick for longer than the last pause', () => {
    const { policy, at } = withClock();
    policy.took(50);
    at(FIRST_PAUSE_MS);
    policy.took(50);
    expect(policy.pauseMs).toBe(2 * FIRST_PAUSE_MS);
    // Quick writes for a while: the pause of 2 s ended at 3 s; slow again at 3 s + 2 s or later.
    at(3 * FIRST_PAUSE_MS + 2 * FIRST_PAUSE_MS);
    policy.took(1); // quick: nothing changes
    expect(policy.allowed(SYNC_AFTER)).toBe(true);
    policy.took(50);
    expect(policy.pauseMs).toBe(FIRST_PAUSE_MS);
  });
});
