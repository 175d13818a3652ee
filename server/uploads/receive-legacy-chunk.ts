import { randomUUID } from 'node:crypto';
import { UploadError } from '../../common/errors/upload-error.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import { kickHashPump, saveResetPrefix } from '../runtime/hash-pump.js';
import { chunkSpool } from '../runtime/chunk-spool.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { SpoolRef } from '../storage/upload-storage.js';
import { emitChunkStored } from './chunk-stored.js';
import { legacyProgress } from './legacy-views.js';
import type { UploadContext } from './upload-context.js';
import { logUploadProgress } from './upload-log.js';

/** A legacy chunk form's file part, spooled and verified for size and CRC. */
export interface LegacyPart {
  spool: SpoolRef;
  size: number;
  crc: number;
}

/** Where a form's file part is streamed while the form is read (see http/multipart-chunk.ts). */
export interface LegacyPartSink {
  /** The most bytes the part may have: its upload's size, or the largest file when the upload is not known yet. */
  readonly maxSize: number;
  write(source: AsyncIterable<Uint8Array>): Promise<LegacyPart>;
  discard(): Promise<void>;
}

export interface LegacyChunkAnswer {
  success: true;
  received_chunks: number;
  total_chunks: number;
  progress: number;
  chunk_index: number;
  /** True when the same bytes were already held (nothing changed). */
  duplicate: boolean;
}

/**
 * A sink for a form's file part: a spool in the session's staging upload when the form named the
 * upload before its file part (as Python requests and the Python dashboard's client send it),
 * otherwise in the shared spool area, through a ChunkVerifier for its size and CRC. Nothing is
 * buffered in memory.
 */
export function legacyPartSink(context: UploadContext, runtime: SessionRuntime | undefined): LegacyPartSink {
  const spool: SpoolRef = { staging: runtime?.id, name: `part-${randomUUID()}` };
  const maxSize = runtime?.record.size ?? context.config.maxFileSize;
  return {
    maxSize,
    write: async (source) => {
      const verifier = new ChunkVerifier(maxSize);
      await context.storage.writeSpool(spool, verifier.through(source));
      return { spool, size: verifier.length, crc: verifier.crc };
    },
    discard: () => context.storage.removeSpool(spool),
  };
}

/** Checks a chunk form's `chunk_index` and `chunk_total` against the upload. */
export function checkLegacyChunkIndex(runtime: SessionRuntime, index: number, total: number): void {
  const { chunkCount } = runtime.record;
  if (total !== chunkCount)
    throw new UploadError(
      'INVALID_FIELD',
      `chunk_total ${total} does not match the ${chunkCount} chunks given at init`,
    );
  if (index >= chunkCount)
    throw new UploadError(
      'CHUNK_INDEX_OUT_OF_RANGE',
      `chunk_index ${index} is out of range: this upload has chunks 0 to ${chunkCount - 1}`,
    );
}

/**
 * Keeps a legacy chunk whose body was spooled: it becomes spool `chunk-<index>` of the session
 * (the hash pump places it in the staged file in order). Re-sending a chunk replaces it, as in
 * the Python dashboard: identical bytes change nothing, different bytes replace the held chunk,
 * even one already placed (the chunks after it are taken back out, see unplaceFrom).
 */
export async function storeLegacyChunk(
  context: UploadContext,
  runtime: SessionRuntime,
  index: number,
  part: LegacyPart,
): Promise<LegacyChunkAnswer> {
  const answer = await runtime.lock.run(async () => {
    const { record } = runtime;
    if (runtime.ended)
      throw new UploadError(
        'INVALID_FIELD',
        `upload_id ${record.id} is no longer a known upload (cancelled or expired)`,
      );
    if (record.state === 'complete') {
      await context.storage.removeSpool(part.spool);
      return { duplicate: true };
    }
    if (record.state === 'completing')
      throw new UploadError('SESSION_BUSY', `The upload of ${record.path} is being finalized`);
    const held = runtime.chunks.get(index);
    if (held && held.size === part.size && held.crc === part.crc) {
      await context.storage.removeSpool(part.spool);
      return { duplicate: true };
    }
    const total = runtime.receivedBytes() - (held?.size ?? 0) + part.size;
    if (total > record.size) {
      await context.storage.removeSpool(part.spool);
      throw new UploadError(
        'CHUNK_SIZE_MISMATCH',
        `chunk ${index} (${part.size} bytes) would make the chunks ` +
          `add up to ${total} bytes, more than filesize ${record.size}`,
      );
    }
    if (held?.offset !== null && held !== undefined) await unplaceFrom(context, runtime, index);
    await context.storage.moveSpool(part.spool, chunkSpool(record.id, index));
    const chunk = { index, size: part.size, crc: part.crc, offset: null };
    const now = Date.now();
    record.expiresAt = now + context.config.sessionExpiry * 1000;
    await context.store.ackChunk(record.id, chunk, now, record.expiresAt);
    runtime.chunks.set(index, chunk);
    return { duplicate: false };
  });
  if (!answer.duplicate) {
    void kickHashPump(context, runtime);
    logUploadProgress(context.log, runtime);
    emitChunkStored(context, runtime, index, part.size);
  }
  const received = runtime.record.state === 'complete' ? runtime.record.chunkCount : runtime.chunks.size;
  return {
    success: true,
    received_chunks: received,
    total_chunks: runtime.record.chunkCount,
    progress: legacyProgress(received, runtime.record.chunkCount),
    chunk_index: index,
    duplicate: answer.duplicate,
  };
}

/**
 * Takes the staged file back to before chunk `index`: the chunks placed after it are copied
 * back into their spools, and the prefix hash restarts (the pump re-hashes the kept prefix).
 * Bytes left past the new prefix are overwritten as chunks are placed again, and cut off at
 * commit. Runs under the session's lock.
 */
async function unplaceFrom(context: UploadContext, runtime: SessionRuntime, index: number): Promise<void> {
  const { id } = runtime.record;
  const placed = [...runtime.chunks.values()]
    .filter((chunk) => chunk.offset !== null && chunk.index >= index)
    .sort((a, b) => a.index - b.index);
  for (const chunk of placed) {
    if (chunk.index === index || chunk.offset === null) continue;
    await context.storage.writeSpool(
      chunkSpool(id, chunk.index),
      context.storage.readStaged(id, chunk.offset, chunk.size),
      chunk.size,
    );
  }
  await context.store.setChunkOffsets(
    id,
    placed.map((chunk) => ({ index: chunk.index, offset: null })),
  );
  for (const chunk of placed) chunk.offset = null;
  runtime.hash.reset();
  await saveResetPrefix(context, runtime);
  context.log.info(
    { event: 'legacy_chunk_replaced', sessionId: id, index },
    `Chunk ${index} of ${runtime.record.path} was replaced after it had been appended; re-assembling from it`,
  );
}
