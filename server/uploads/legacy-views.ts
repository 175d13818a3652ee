import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { FileRecord } from '../sessions/session-record.js';
import { completedKey, compressedKey } from '../storage/stored-file-layout.js';

/** The legacy API's progress: the share of chunks received, in percent (as the Python dashboard computed it). */
export function legacyProgress(received: number, total: number): number {
  return total === 0 ? 100 : Math.round((received / total) * 10000) / 100;
}

/** GET /upload/status/:id, the legacy API's fields plus `received_indexes` and `state`. */
export function legacyStatusView(runtime: SessionRuntime): Record<string, unknown> {
  const r = runtime.record;
  const complete = r.state === 'complete';
  const received = complete ? r.chunkCount : runtime.chunks.size;
  return {
    success: true,
    upload_id: r.id,
    filename: r.path,
    received_chunks: received,
    total_chunks: r.chunkCount,
    progress: legacyProgress(received, r.chunkCount),
    compression_enabled: r.compress,
    received_indexes: complete ? Array.from({ length: r.chunkCount }, (_, i) => i) : runtime.receivedIndexes(),
    state: complete ? 'complete' : r.state === 'completing' ? 'finalizing' : 'uploading',
    ...(complete && r.result ? { file_path: completedKey({ uploader: r.uploader, path: r.result.storedPath }) } : {}),
  };
}

/** One entry of GET /uploads: relative locations only, never absolute server paths. */
export function legacyFileView(file: FileRecord): Record<string, unknown> {
  return {
    filename: file.path,
    file_path: completedKey(file),
    size: file.size,
    sha256: file.sha256,
    checksum: file.md5,
    completed_at: new Date(file.completedAt).toISOString(),
    compressed_path: file.compressedSize !== null ? compressedKey(file) : null,
    compressed_size: file.compressedSize,
    metadata: file.metadata,
  };
}
