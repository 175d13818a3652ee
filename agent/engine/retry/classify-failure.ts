import { UploadError } from '../../../common/errors/upload-error.js';
import { errorDetails } from '../transport/http-errors.js';

/**
 * What to do about a failed request: the one place that decides which failures are retried.
 *
 * - `retry` (uses up an attempt): network errors, timeouts, stalls, 5xx, 408, a chunk refused
 *   for a checksum mismatch (it was damaged on the way), a busy session, a garbled answer, an
 *   answer that names another file than the one sent (ANSWER_MISMATCH);
 * - `suspect` (uses up an attempt, at most SUSPECT_RETRIES times, then `permanent`): a refusal
 *   that a byte damaged on the way can cause in a request that was valid when sent: 400, 401,
 *   a 404 other than SESSION_NOT_FOUND, and REQUEST_CHECKSUM_MISMATCH (the server says so);
 * - `wait` (does not use an attempt): 429 and 503, for their Retry-After;
 * - `restart`: the local file changed, or the server no longer knows the session: start the file
 *   over cleanly (a new session);
 * - `repair`: completing found chunks missing or damaged: re-send the ones the server lists;
 * - `blocked`: nothing can go on until the agent's situation changes, whatever the file: its
 *   state disk is full, or the server's TLS certificate is refused. The upload waits (holding
 *   nothing) until the engine is unblocked, then goes on from what the server holds;
 * - `stop`: the engine is stopping or the upload was cancelled;
 * - `permanent`: any other 4xx (the server refused the request itself: the file fails with the
 *   server's message), unreadable local files, configuration errors, and bugs.
 */
export type FailureKind = 'retry' | 'suspect' | 'wait' | 'restart' | 'repair' | 'blocked' | 'stop' | 'permanent';

/** How many times a `suspect` refusal is retried before it counts as meant. */
export const SUSPECT_RETRIES = 3;

const retried = new Set([
  'NETWORK',
  'TIMEOUT',
  'STALLED',
  'CHUNK_CHECKSUM_MISMATCH',
  'SESSION_BUSY',
  'PROTOCOL',
  'ANSWER_MISMATCH',
]);
const restarted = new Set(['FILE_CHANGED', 'SESSION_NOT_FOUND']);
const repaired = new Set(['CHUNKS_MISSING', 'FILE_CHECKSUM_MISMATCH']);
const blocked = new Set(['STATE_DISK_FULL', 'TLS_CERTIFICATE']);
const stopped = new Set(['STOPPED', 'CANCELLED']);
/** HTTP statuses that a damaged request line or header can cause (404 SESSION_NOT_FOUND keeps its meaning). */
const suspectStatuses = new Set([400, 401, 404]);

export function classifyFailure(error: unknown): FailureKind {
  if (!(error instanceof UploadError)) return 'permanent';
  if (stopped.has(error.code)) return 'stop';
  if (blocked.has(error.code)) return 'blocked';
  if (restarted.has(error.code)) return 'restart';
  if (repaired.has(error.code)) return 'repair';
  const { status } = errorDetails(error);
  if (status === 429 || status === 503) return 'wait';
  if (retried.has(error.code)) return 'retry';
  if (status !== undefined && (status >= 500 || status === 408)) return 'retry';
  if (error.code === 'REQUEST_CHECKSUM_MISMATCH' || (status !== undefined && suspectStatuses.has(status)))
    return 'suspect';
  return 'permanent';
}

/** Failures that mean "the server cannot be reached": when their retries run out, the engine goes offline. */
export function isNetworkDown(error: unknown): boolean {
  return (
    error instanceof UploadError && (error.code === 'NETWORK' || error.code === 'TIMEOUT' || error.code === 'STALLED')
  );
}

/** Seconds a `wait` failure asks for (Retry-After), if it said. */
export function retryAfterSeconds(error: unknown): number | undefined {
  return errorDetails(error).retryAfter;
}

/** A short reason for events and status: the error's message. */
export function describeFailure(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What a refused whole-file upload (PUT /v1/files/<path>) means for the file:
 * - `route-missing`: 404 or 405, an older server without the route: use sessions with this
 *   server from now on;
 * - `use-session`: 413 (this server takes smaller whole files), 431 (headers too large for it),
 *   or 409 FILE_EXISTS without replace (a session's create-or-resume tells a stored look-alike,
 *   which is replaced, from a different file, which is refused): send this file as a session;
 * - undefined: handle it as any other failure.
 */
export function wholeFileFallback(error: unknown): 'route-missing' | 'use-session' | undefined {
  if (!(error instanceof UploadError)) return undefined;
  const { status } = errorDetails(error);
  if (status === 404 || status === 405) return 'route-missing';
  if (status === 413 || status === 431 || (status === 409 && error.code === 'FILE_EXISTS')) return 'use-session';
  return undefined;
}
