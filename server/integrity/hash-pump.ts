import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { DATA_BLOB, legacyChunkBlob, type UploadContext } from '../uploads/upload-context.js';
import { ChunkVerifier } from './chunk-verifier.js';

const pumpAgain = new WeakSet<SessionRuntime>();

/**
 * The pump flushes the data blob each time the prefix grew by this much, so that the fsync at
 * completion only has the tail left to write (completing 1 GiB stays fast even on slow disks).
 */
export const FLUSH_EVERY = 64 * 1024 * 1024;

/**
 * Advances a session's prefix hash over every chunk that is held and contiguous with it, in the
 * background. Native chunks are already in `data` at their offsets and are read back (from the
 * page cache, normally) only when they arrived ahead of the prefix, or after a restart. Legacy
 * chunks live in their own blobs until the prefix reaches them; the pump then appends each to
 * `data` and hashes it in the same pass. Returns the running pump (one per session).
 */
export function kickHashPump(context: UploadContext, runtime: SessionRuntime): Promise<void> {
  pumpAgain.add(runtime);
  runtime.pump ??= (async () => {
    try {
      while (pumpAgain.has(runtime)) {
        pumpAgain.delete(runtime);
        while (!runtime.ended && (await step(context, runtime)));
        if (!runtime.ended && runtime.hash.bytes - runtime.flushedBytes >= FLUSH_EVERY) {
          const bytes = runtime.hash.bytes;
          await context.storage.flush(runtime.id, DATA_BLOB);
          runtime.flushedBytes = bytes;
          pumpAgain.add(runtime);
        }
      }
      runtime.pumpError = undefined;
    } catch (error) {
      runtime.pumpError = error as Error;
      if (!runtime.ended) context.log.warn({ event: 'hash_pump_failed', sessionId: runtime.id, err: error }, 'Hashing the received chunks failed; completion will re-verify them');
    } finally {
      runtime.pump = undefined;
    }
  })();
  return runtime.pump;
}

/**
 * Runs the pump until the prefix covers every chunk, for completion. Throws the pump's error
 * (ENOSPC while the legacy API's chunks are appended, a data blob cut short...) when it cannot.
 */
export async function finishHashPump(context: UploadContext, runtime: SessionRuntime): Promise<void> {
  for (;;) {
    if (runtime.hash.chunks >= runtime.record.chunkCount) return;
    const before = runtime.hash.chunks;
    runtime.pumpError = undefined;
    await kickHashPump(context, runtime);
    if (runtime.pumpError) throw runtime.pumpError;
    if (runtime.hash.chunks === before && !runtime.chunks.has(before)) {
      throw new UploadError('CHUNKS_MISSING', `chunk ${before} is missing`, { details: { missing: [before] } });
    }
  }
}

/** Hashes (and for the legacy API, appends) the next chunk; false when there is nothing to do. */
async function step(context: UploadContext, runtime: SessionRuntime): Promise<boolean> {
  const index = runtime.hash.chunks;
  const chunk = runtime.chunks.get(index);
  if (index >= runtime.record.chunkCount || !chunk) return false;
  const { record } = runtime;
  if (record.api === 'native' || chunk.offset !== null) {
    const fork = runtime.hash.fork();
    const offset = record.api === 'native' ? index * record.chunkSize! : chunk.offset!;
    for await (const piece of context.storage.readAt(record.id, DATA_BLOB, offset, chunk.size)) {
      for (const hash of fork.hashes) hash.update(piece);
    }
    runtime.hash.adopt(fork, chunk.size);
    return true;
  }
  await runtime.lock.run(() => appendLegacyChunk(context, runtime, index));
  return true;
}

/** Moves legacy chunk `index` from its own blob to the end of `data`, hashing it on the way. */
async function appendLegacyChunk(context: UploadContext, runtime: SessionRuntime, index: number): Promise<void> {
  const chunk = runtime.chunks.get(index);
  if (runtime.ended || !chunk || chunk.offset !== null || runtime.hash.chunks !== index) return;
  const { id } = runtime.record;
  const fork = runtime.hash.fork();
  const offset = runtime.hash.bytes;
  const verifier = new ChunkVerifier(chunk.size, fork.hashes);
  const written = await context.storage.writeAt(id, DATA_BLOB, offset, verifier.through(context.storage.readAt(id, legacyChunkBlob(index), 0, chunk.size)), { existing: true });
  if (written !== chunk.size || verifier.crc !== chunk.crc) {
    // The chunk's blob changed on disk since it was received (a lost write): forget it, so the
    // client is told to send it again.
    context.log.warn({ event: 'legacy_chunk_damaged', sessionId: id, index }, `Legacy chunk ${index} of ${runtime.record.path} was damaged on disk; it must be sent again`);
    runtime.chunks.delete(index);
    context.store.deleteChunks(id, [index]);
    await context.storage.removeBlob(id, legacyChunkBlob(index));
    return;
  }
  chunk.offset = offset;
  context.store.setChunkOffset(id, index, offset);
  runtime.hash.adopt(fork, chunk.size);
  await context.storage.removeBlob(id, legacyChunkBlob(index));
}
