import type { CompletedFile, OpenSession, SessionStatusResponse } from '../../common/protocol/native-protocol.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import { nativeChunkSize, type FileRecord } from '../sessions/session-record.js';

/** The native protocol's view of an open session. */
export function openSessionView(runtime: SessionRuntime, resumed: boolean): OpenSession {
  const r = runtime.record;
  return {
    state: 'open',
    id: r.id,
    path: r.path,
    size: r.size,
    chunkSize: nativeChunkSize(r),
    chunkCount: r.chunkCount,
    received: runtime.receivedIndexes(),
    resumed,
    expiresAt: new Date(r.expiresAt).toISOString(),
  };
}

export function statusView(runtime: SessionRuntime): SessionStatusResponse {
  const r = runtime.record;
  if (r.state === 'complete' && r.result) return { ...r.result.file, id: r.id };
  const view = openSessionView(runtime, false);
  return r.state === 'completing' ? { ...view, state: 'completing' } : view;
}

export function completedFileView(file: FileRecord): CompletedFile {
  return {
    state: 'complete',
    path: file.path,
    size: file.size,
    sha256: file.sha256,
    completedAt: new Date(file.completedAt).toISOString(),
    ...(file.compressedSize !== null ? { compressedSize: file.compressedSize } : {}),
  };
}
