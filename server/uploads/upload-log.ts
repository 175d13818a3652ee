import { formatSize } from '../../common/config/units.js';
import type { Logger } from '../logging/logger.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { SessionRecord } from '../sessions/session-record.js';

/**
 * What the start and completion lines need: a session, or a whole-file upload shaped like one (its
 * id is its staging upload's).
 */
export interface LoggedUpload {
  readonly record: Pick<
    SessionRecord,
    'id' | 'api' | 'uploader' | 'path' | 'size' | 'chunkCount' | 'compress' | 'createdAt'
  >;
}

/**
 * The log lines of an upload's life, with the content of the legacy deployment guide's examples: start, progress at
 * 10% steps, completion (size, duration, throughput) and the compression ratio.
 */
export function logUploadStarted(log: Logger, runtime: LoggedUpload): void {
  const r = runtime.record;
  log.info(
    {
      event: 'upload_started',
      sessionId: r.id,
      api: r.api,
      uploader: r.uploader,
      path: r.path,
      size: r.size,
      chunks: r.chunkCount,
      compression: r.compress,
    },
    `Initialized upload: ${r.path} (${r.size} bytes, ${r.chunkCount} ` +
      `chunks) - ID: ${r.id} - Compression: ${r.compress}`,
  );
}

/** Logs when the received share crosses a new 10% step (at most once per step). */
export function logUploadProgress(log: Logger, runtime: SessionRuntime): void {
  const r = runtime.record;
  const received = runtime.chunks.size;
  const bytes = runtime.receivedBytes();
  const share = r.api === 'legacy' || r.size === 0 ? received / r.chunkCount : Math.min(1, bytes / r.size);
  const decile = Math.floor(share * 10 + 1e-9);
  if (decile <= runtime.loggedDecile) return;
  runtime.loggedDecile = decile;
  const percent = (share * 100).toFixed(1);
  log.info(
    {
      event: 'upload_progress',
      sessionId: r.id,
      uploader: r.uploader,
      path: r.path,
      receivedChunks: received,
      chunks: r.chunkCount,
      receivedBytes: bytes,
      percent: Number(percent),
    },
    `Received chunk ${received}/${r.chunkCount} for ${r.path} (${percent}%)`,
  );
}

export function logUploadCompleted(
  log: Logger,
  runtime: LoggedUpload,
  storedPath: string,
  sha256: string,
  deduplicated: boolean,
): void {
  const r = runtime.record;
  const seconds = Math.max(0.001, (Date.now() - r.createdAt) / 1000);
  const rate = r.size / seconds;
  log.info(
    {
      event: 'upload_completed',
      sessionId: r.id,
      uploader: r.uploader,
      path: storedPath,
      size: r.size,
      durationSeconds: Number(seconds.toFixed(3)),
      bytesPerSecond: Math.round(rate),
      sha256,
      deduplicated,
    },
    `Completed ${storedPath}: ${r.size} bytes in ${seconds.toFixed(1)} ` +
      `s (${formatSize(Math.round(rate))}/s), sha256 ${sha256}`,
  );
}
