import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { SyncWritePolicy } from './sync-write-policy.js';

/**
 * Bytes gathered before one write. A request body arrives in pieces of at most 64 KiB; writing
 * each with its own call, awaited before the next piece is read, costs a round trip through
 * libuv's pool per piece during which the socket is not read. Gathering into batches (written
 * synchronously while that is quick, see sync-write-policy.ts, else through the pool while the
 * next one fills) cuts the calls to one per batch. The size matters because of the
 * CPU caches: a batch is filled (and hashed) by the main thread and copied into the page cache by
 * a pool thread, and it must still be in cache then. Measured on the chunk path (512 MiB in 8 MiB
 * chunks one after another, test/server/scripts/measure-server-cpu.ts throughput, five
 * alternating runs each): server CPU 3.22 s/GiB unbatched, 3.14 with 64 KiB batches, 2.80 with
 * 128 KiB, 3.08 with 192 KiB, 2.9-3.3 with 256-512 KiB and 3.8-4.1 with 1 MiB (whose copy into
 * the page cache doubled the kernel time: a 1 MiB batch does not fit this CPU's L2 cache).
 */
export const WRITE_BATCH = 128 * 1024;
/**
 * Batch buffers the whole process may hold (4 MiB). Each stream uses two (one written while the
 * other fills) as long as the pool has them: 16 uploads at a time. With more at once (50 in the
 * fan-in benchmark) the streams beyond the pool write their pieces one by one, as before
 * batching, so memory stays bounded however many uploads arrive.
 */
const MAX_BATCH_BUFFERS = 32;

/**
 * The batch buffers, reused. Pieces are copied into them rather than kept: a kept piece outlives
 * V8's young generation and its memory is only freed by a full GC, which with 50 streams added
 * about 60 MiB of RSS; a copy costs a memcpy (a few ms per GiB) and keeps the bytes in cache.
 */
class BatchBuffers {
  readonly #free: Buffer[] = [];
  #allocated = 0;

  acquire(): Buffer | undefined {
    const reused = this.#free.pop();
    if (reused) return reused;
    if (this.#allocated >= MAX_BATCH_BUFFERS) return undefined;
    this.#allocated += 1;
    return Buffer.allocUnsafeSlow(WRITE_BATCH);
  }

  release(buffer: Buffer): void {
    this.#free.push(buffer);
  }
}

const buffers = new BatchBuffers();

/** One for the process: a synchronous write blocks every request the process serves, whichever upload made it. */
const syncWrites = new SyncWritePolicy();

/**
 * Streams `source` into `handle` from `position` and resolves with the number of bytes written,
 * once every write finished. Pieces are copied into WRITE_BATCH buffers, each written with one
 * call while the next fills (with one buffer from the pool: written, then refilled; with none:
 * piece by piece, each write awaited). At most one write is in flight: while a full buffer waits for it, the source
 * is not read, so the socket's backpressure holds. Rejects with the first error (a write's or
 * the source's), only after the write in flight settled, so the handle can be closed safely.
 * `writes` decides per write whether it runs synchronously (the process's policy unless given).
 */
export async function writeBatched(
  handle: FileHandle,
  position: number,
  source: AsyncIterable<Uint8Array>,
  writes: SyncWritePolicy = syncWrites,
): Promise<number> {
  const held: Buffer[] = [];
  for (let i = 0; i < 2; i += 1) {
    const buffer = buffers.acquire();
    if (buffer) held.push(buffer);
  }
  let at = position;
  let filling = held[0];
  let filled = 0;
  let inFlight: { done: Promise<void>; buffer: Buffer | undefined } | undefined;
  /** Waits for the write in flight; its buffer (if any) is free again. */
  const settle = async (): Promise<Buffer | undefined> => {
    if (!inFlight) return undefined;
    const { done, buffer } = inFlight;
    inFlight = undefined;
    await done;
    return buffer;
  };
  const start = (data: Uint8Array, buffer: Buffer | undefined): void => {
    const done = writeAll(handle, data, at, writes.allowed(at - position) ? writes : undefined);
    // Observed at once, so a failure while the next batch fills is never unhandled; settle() throws it.
    done.catch(() => undefined);
    inFlight = { done, buffer };
    at += data.byteLength;
  };
  /** Writes the filled part of `filling` and moves on to the other buffer (or this one, once written). */
  const flush = async (full: Buffer): Promise<void> => {
    const length = filled;
    filled = 0;
    const freed = await settle();
    start(full.subarray(0, length), full);
    filling = held.length === 2 ? (freed ?? held.find((b) => b !== full)) : ((await settle()) ?? full);
  };
  try {
    for await (const piece of source) {
      if (!filling) {
        // No batch buffer: one write per piece, awaited before the next is read (no more memory than before batching).
        start(piece, undefined);
        await settle();
        continue;
      }
      let offset = 0;
      while (offset < piece.byteLength) {
        const count = Math.min(piece.byteLength - offset, filling.length - filled);
        filling.set(count === piece.byteLength ? piece : piece.subarray(offset, offset + count), filled);
        filled += count;
        offset += count;
        if (filled === filling.length) await flush(filling);
      }
    }
    if (filling && filled > 0) await flush(filling);
    await settle();
  } catch (error) {
    await settle().catch(() => undefined);
    throw error;
  } finally {
    for (const buffer of held) buffers.release(buffer);
  }
  return at - position;
}

/**
 * Writes all of `data` at `position` (a short write continues where it stopped): on the main
 * thread when `sync` (the policy allowed it for this batch), else through libuv's pool.
 */
async function writeAll(
  handle: FileHandle,
  data: Uint8Array,
  position: number,
  sync: SyncWritePolicy | undefined,
): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    let bytesWritten: number;
    if (sync) {
      const started = performance.now();
      bytesWritten = writeSync(handle.fd, data, done, data.byteLength - done, position + done);
      sync.took(performance.now() - started);
    } else {
      ({ bytesWritten } = await handle.write(data, done, data.byteLength - done, position + done));
    }
    done += bytesWritten;
  }
}
