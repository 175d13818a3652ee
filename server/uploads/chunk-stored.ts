import type { SessionRuntime } from '../runtime/session-runtime.js';
import { sessionEventOf } from './cancel-session.js';
import type { UploadContext } from './upload-context.js';

/** Emits `chunk-stored` for an acknowledged chunk (the byte count is summed only when someone listens). */
export function emitChunkStored(context: UploadContext, runtime: SessionRuntime, index: number, bytes: number): void {
  if (!context.events.listens('chunk-stored')) return;
  context.events.emit('chunk-stored', {
    ...sessionEventOf(runtime),
    index,
    bytes,
    receivedChunks: runtime.chunks.size,
    chunkCount: runtime.record.chunkCount,
    receivedBytes: runtime.receivedBytes(),
  });
}
