import { randomUUID } from 'node:crypto';
import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { ChunkVerifier } from '../integrity/chunk-verifier.js';
import { kickHashPump, saveResetPrefix } from '../runtime/hash-pump.js';
import { chunkSpool } from '../runtime/chunk-spool.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import { isDiskFull } from '../storage/disk-full.js';
import { isMissingStaging, type SpoolRef } from '../storage/upload-storage.js';
import { emitChunkStored } from './chunk-stored.js';
import { legacyProgress } from './legacy-views.js';
import type { UploadContext } from './upload-context.js';
import { logUploadProgress } from './upload-log.js';

/** A legacy chunk form's file part, spooled and verified for size and CRC. */
export interface LegacyPart {
  /** Where it was spooled; undefined when it was read and dropped (its upload is already complete). */
  spool: SpoolRef | undefined;
  size: number;
  crc: number;
}

/** Where a form's file part is streamed while the form is read (see http/multipart-chunk.ts). */
export interface LegacyPartSink {
  /** The most bytes the part may have: what its session still allows. */
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

/** What the form says about the part before it arrives. */
export interface LegacyPartHints {
  /** `chunk_index`, when the form gave it before the part (a re-sent chunk may replace its bytes). */
  index: number | undefined;
  /** The request's Content-Length, when it has one: the part is at most that long. */
  declaredLength: number | undefined;
}

/**
 * A sink for a form's file part, in a spool of its session's staging upload, through a
 * ChunkVerifier for its size and CRC. Nothing is buffered in memory. Bounded before a byte is
 * written: the part may hold at most what the session still allows (its size, less the chunks
 * held, except the one this part replaces, less the other parts of the session being received),
 * the disk must have room for it plus the reserve (507 otherwise), and its bytes count against
 * the uploader's maxBytesInFlight (429). The part of an upload already complete is read and
 * dropped (the answer is `duplicate`).
 */
export function legacyPartSink(
  context: UploadContext,
  runtime: SessionRuntime,
  hints: LegacyPartHints,
): LegacyPartSink {
  const { record } = runtime;
  const spool: SpoolRef = { staging: runtime.id, name: `part-${randomUUID()}` };
  const replaced =
    hints.index !== undefined
      ? (runtime.chunks.get(hints.index)?.size ?? 0)
      : Math.max(0, ...[...runtime.chunks.values()].map((chunk) => chunk.size));
  const allowance = Math.max(0, record.size - runtime.receivedBytes() + replaced);
  const maxSize = Math.min(allowance, hints.declaredLength ?? allowance);
  let written = false;
  return {
    maxSize: allowance,
    write: async (source) => {
      const verifier = new ChunkVerifier(allowance);
      if (record.state === 'complete') {
        for await (const _ of verifier.through(source));
        return { spool: undefined, size: verifier.length, crc: verifier.crc };
      }
      await checkPartSpace(context, maxSize);
      const release = context.inFlight.reserve(record.uploader, maxSize);
      let counted = 0;
      try {
        written = true;
        await context.storage.writeSpool(
          spool,
          sessionBound(runtime, allowance, verifier.through(source), (n) => (counted += n)),
        );
        return { spool, size: verifier.length, crc: verifier.crc };
      } catch (error) {
        if (isDiskFull(error)) {
          context.freeSpace.sawFullDisk();
          throw new UploadError(
            'INSUFFICIENT_STORAGE',
            `The server ran out of disk space while receiving this chunk of ${record.path}; ` +
              'the upload and its other chunks are kept, retry later',
            { cause: error },
          );
        }
        if (!isMissingStaging(error)) throw error;
        // The session ended or completed while this part was being received.
        throw runtime.record.state === 'complete'
          ? new UploadError(
              'SESSION_BUSY',
              `The upload of ${record.path} was finalized while this chunk was being received`,
            )
          : new UploadError(
              'INVALID_FIELD',
              `upload_id ${record.id} is no longer a known upload (cancelled or expired)`,
            );
      } finally {
        runtime.legacySpooling -= counted;
        release();
      }
    },
    discard: async () => {
      if (written) await context.storage.removeSpool(spool);
    },
  };
}

/**
 * Counts the part's bytes into the session's bytes being received, refusing the part as soon as
 * the session's parts in flight together pass what it allows (parallel parts cannot together
 * hold more than the file).
 */
async function* sessionBound(
  runtime: SessionRuntime,
  allowance: number,
  source: AsyncIterable<Uint8Array>,
  count: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  for await (const piece of source) {
    runtime.legacySpooling += piece.byteLength;
    count(piece.byteLength);
    if (runtime.legacySpooling > allowance)
      throw new UploadError(
        'CHUNK_SIZE_MISMATCH',
        `The chunks of ${runtime.record.path} being received add up to more than its filesize ` +
          `${runtime.record.size} with the chunks held; send them one after another`,
      );
    yield piece;
  }
}

/**
 * 507 before a part is written when the disk lacks room for it plus the reserve. Measured afresh
 * (one statfs per chunk form): the free-space gauge counts the session's whole size as admitted
 * since its init, and the disk may have filled by other means since.
 */
async function checkPartSpace(context: UploadContext, bytes: number): Promise<void> {
  if (!context.storage.freeSpace) return;
  const free = await context.storage.freeSpace();
  if (free < bytes + context.config.diskReserve) {
    throw new UploadError(
      'INSUFFICIENT_STORAGE',
      `Not enough disk space on the server for this chunk of ${formatSize(bytes)}: ` +
        `${formatSize(Math.max(0, free))} free, ${formatSize(context.config.diskReserve)} kept in ` +
        `reserve; the upload is kept, retry later`,
    );
  }
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
      if (part.spool) await context.storage.removeSpool(part.spool);
      return { duplicate: true };
    }
    if (record.state === 'completing')
      throw new UploadError('SESSION_BUSY', `The upload of ${record.path} is being finalized`);
    const held = runtime.chunks.get(index);
    const { spool } = part;
    if (!spool) throw new UploadError('SESSION_BUSY', `The upload of ${record.path} changed while this chunk arrived`);
    if (held && held.size === part.size && held.crc === part.crc) {
      await context.storage.removeSpool(spool);
      return { duplicate: true };
    }
    const total = runtime.receivedBytes() - (held?.size ?? 0) + part.size;
    if (total > record.size) {
      await context.storage.removeSpool(spool);
      throw new UploadError(
        'CHUNK_SIZE_MISMATCH',
        `chunk ${index} (${part.size} bytes) would make the chunks ` +
          `add up to ${total} bytes, more than filesize ${record.size}`,
      );
    }
    if (held?.offset !== null && held !== undefined) await unplaceFrom(context, runtime, index);
    await context.storage.moveSpool(spool, chunkSpool(record.id, index));
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
