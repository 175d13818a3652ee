/**
 * The one error class of the project, after undici's `lib/core/errors.js`: every failure carries
 * a stable string `code` (safe to match on, log and send over the wire) and, where there is one,
 * the underlying `cause`. Codes map to HTTP statuses (server/http/error-status.ts), ROS
 * diagnostic levels (agent/ros/) and process exit codes (agent/cli/, server/cli/), each in one
 * place.
 */

/** Every code, with what it means. Add new codes here and nowhere else. */
export const errorCodes = {
  // Configuration and command line
  CONFIG_INVALID: 'a configuration value is invalid',
  CONFIG_UNKNOWN_OPTION: 'an unknown option or flag was given',
  CONFIG_FILE_UNREADABLE: 'a configuration file could not be read or parsed',
  USAGE: 'the command line is not valid',

  // Requests the server refuses (client mistakes)
  BAD_REQUEST: 'the request is malformed',
  INVALID_FIELD: 'a field is missing or has the wrong type or range',
  INVALID_PATH: 'a file path is not a safe relative path',
  UNSUPPORTED_MEDIA_TYPE: 'the request body has the wrong content type or encoding',
  CHUNK_INDEX_OUT_OF_RANGE: 'a chunk index is outside the session',
  CHUNK_SIZE_MISMATCH: 'a chunk body does not have the expected length',
  CHUNK_CHECKSUM_MISMATCH: 'a chunk failed its checksum and was not stored',
  CHUNK_CONFLICT: 'a chunk was re-sent with content different from the acknowledged one',
  CHUNKS_MISSING: 'completion was asked for before every chunk arrived',
  FILE_CHECKSUM_MISMATCH: 'the whole file failed its checksum',
  SESSION_NOT_FOUND: 'no such upload session for this uploader',
  SESSION_BUSY: 'the session is being completed or cancelled',
  FILE_EXISTS: 'a different file is already stored at this path',
  FILE_TOO_LARGE: 'the file is over the maximum size',
  BODY_TOO_LARGE: 'a JSON or form request body is over its size limit',
  LENGTH_REQUIRED: 'the request body must declare its length (Content-Length)',
  ROUTE_NOT_FOUND: 'no such route',
  UNAUTHORIZED: 'a bearer token is missing or wrong',
  RATE_LIMITED: 'too many requests; wait for Retry-After',

  // Server-side conditions
  INSUFFICIENT_STORAGE: 'not enough free disk space',
  SERVER_UNAVAILABLE: 'the server is shutting down or overloaded',
  TLS_CONFIG: 'a TLS certificate or key could not be read',
  INTERNAL: 'an unexpected internal error',

  // Agent side
  NETWORK: 'the server could not be reached or the connection broke',
  TIMEOUT: 'a request took longer than its timeout',
  STALLED: 'a request moved no bytes for the stall timeout',
  HTTP_STATUS: 'the server answered with an unexpected status',
  PROTOCOL: 'the server answered something the agent does not understand',
  FILE_NOT_FOUND: 'a local file does not exist',
  FILE_UNREADABLE: 'a local file could not be read',
  FILE_CHANGED: 'a local file changed while it was queued or uploading',
  CANCELLED: 'the upload was cancelled',
  STOPPED: 'the manager was stopped',
  STATE_DIR: 'the state directory is unusable',
  STATE_DIR_LOCKED: 'another agent holds the state directory',
  ROS_UNAVAILABLE: 'ROS 2 or rclnodejs is not available',
} as const satisfies Record<string, string>;

export type UploadErrorCode = keyof typeof errorCodes;

export interface UploadErrorOptions {
  cause?: unknown;
  /** Structured details that are safe to log and to send to a client (never secrets). */
  details?: Record<string, unknown>;
}

export class UploadError extends Error {
  override readonly name = 'UploadError';
  readonly code: UploadErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: UploadErrorCode, message: string, options: UploadErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: UploadErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isUploadError(value: unknown, code?: UploadErrorCode): value is UploadError {
  return value instanceof UploadError && (code === undefined || value.code === code);
}

export function isUploadErrorCode(value: unknown): value is UploadErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}
