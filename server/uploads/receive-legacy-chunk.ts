import { UploadError } from '../../common/errors/upload-error.js';
import { kickHashPump } from '../integrity/hash-pump.js';
import { logUploadProgress } from '../logging/upload-log.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { legacyProgress } from './legacy-views.js';
import { DATA_BLOB, legacyChunkBlob, type UploadContext } from './upload-context.js';

export interface LegacyChunkPart {
  /** Where the part was streamed to. */
  session: string;
  blob: string;
  size: number;
  crc: number;
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
 * Keeps a legacy chunk whose body was streamed to a part blob: it becomes blob `chunk-<index>` of
 * the session (the hash pump appends it to `data` in order). Re-sending a chunk replaces it, as
 * in the Python dashboard: identical bytes change nothing, different bytes replace the held chunk, even one
 * already appended (the data is rolled back to before it, see unappendFrom).
 */
export async function commitLegacyChunk(context: UploadContext, runtime: SessionRuntime, index: number, part: LegacyChunkPart): Promise<LegacyChunkAnswer> {
  const answer = await runtime.lock.run(async () => {
    const { record } = runtime;
    if (runtime.ended) throw new UploadError('INVALID_FIELD', `upload_id ${record.id} is no longer a known upload (cancelled or expired)`);
    if (record.state === 'complete') {
      await context.storage.removeBlob(part.session, part.blob);
      return { duplicate: true };
    }
    if (record.state === 'completing') throw new UploadError('SESSION_BUSY', `The upload of ${record.path} is being finalized`);
    const held = runtime.chunks.get(index);
    if (held && held.size === part.size && held.crc === part.crc) {
      await context.storage.removeBlob(part.session, part.blob);
      return { duplicate: true };
    }
    const total = runtime.receivedBytes() - (held?.size ?? 0) + part.size;
    if (total > record.size) {
      await context.storage.removeBlob(part.session, part.blob);
      throw new UploadError('CHUNK_SIZE_MISMATCH', `chunk ${index} (${part.size} bytes) would make the chunks add up to ${total} bytes, more than filesize ${record.size}`);
    }
    if (held?.offset !== null && held !== undefined) await unappendFrom(context, runtime, index);
    await context.storage.renameBlob(part.session, part.blob, legacyChunkBlob(index), record.id);
    const chunk = { index, size: part.size, crc: part.crc, offset: null };
    const now = Date.now();
    record.expiresAt = now + context.config.sessionExpiry * 1000;
    context.store.putChunk(record.id, chunk);
    context.store.touch(record.id, now, record.expiresAt);
    runtime.chunks.set(index, chunk);
    return { duplicate: false };
  });
  if (!answer.duplicate) {
    void kickHashPump(context, runtime);
    logUploadProgress(context.log, runtime);
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
 * Rolls `data` back to before chunk `index`: the chunks appended after it are copied back into
 * their own blobs, `data` is truncated at the chunk's offset, and the prefix hash restarts (the
 * pump re-hashes the kept prefix from disk). Runs under the session's lock.
 */
async function unappendFrom(context: UploadContext, runtime: SessionRuntime, index: number): Promise<void> {
  const { id } = runtime.record;
  const appended = [...runtime.chunks.values()].filter((chunk) => chunk.offset !== null && chunk.index >= index).sort((a, b) => a.index - b.index);
  const cut = appended[0]!.offset!;
  for (const chunk of appended) {
    if (chunk.index === index) continue;
    await context.storage.writeAt(id, legacyChunkBlob(chunk.index), 0, context.storage.readAt(id, DATA_BLOB, chunk.offset!, chunk.size));
  }
  await context.storage.truncate(id, DATA_BLOB, cut);
  context.store.setChunkOffsets(id, appended.map((chunk) => ({ index: chunk.index, offset: null })));
  for (const chunk of appended) chunk.offset = null;
  runtime.hash.reset();
  context.log.info({ event: 'legacy_chunk_replaced', sessionId: id, index }, `Chunk ${index} of ${runtime.record.path} was replaced after it had been appended; re-assembling from it`);
}
