import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRITE_BATCH, writeBatched } from '../../server/storage/batched-writer.js';
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

  it("rejects with the write's error (a handle opened read-only)", async () => {
    const file = path.join(dir.path, 'c.bin');
    await writeFile(file, '');
    const handle = await open(file, 'r');
    try {
      await expect(writeBatched(handle, 0, piecesOf(randomBytes(3 * WRITE_BATCH), [65_536]))).rejects.toMatchObject({
        code: 'EBADF',
      });
    } finally {
      await handle.close();
    }
  });
});
