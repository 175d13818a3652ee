import type { UploadErrorCode } from '../../common/errors/upload-error.js';
import type { SessionApi } from '../sessions/session-record.js';

/**
 * The one map from error codes to HTTP statuses, for both APIs. Codes that only the agent
 * raises map to 500 because the server never sends them.
 */
const nativeStatus: Record<UploadErrorCode, number> = {
  CONFIG_INVALID: 500,
  CONFIG_UNKNOWN_OPTION: 500,
  CONFIG_FILE_UNREADABLE: 500,
  USAGE: 500,

  BAD_REQUEST: 400,
  INVALID_FIELD: 400,
  INVALID_PATH: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  CHUNK_INDEX_OUT_OF_RANGE: 400,
  CHUNK_SIZE_MISMATCH: 400,
  CHUNK_CHECKSUM_MISMATCH: 422,
  CHUNK_CONFLICT: 409,
  CHUNKS_MISSING: 409,
  FILE_CHECKSUM_MISMATCH: 422,
  SESSION_NOT_FOUND: 404,
  SESSION_BUSY: 409,
  FILE_EXISTS: 409,
  FILE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  LENGTH_REQUIRED: 411,
  ROUTE_NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  RATE_LIMITED: 429,

  INSUFFICIENT_STORAGE: 507,
  SERVER_UNAVAILABLE: 503,
  TLS_CONFIG: 500,
  INTERNAL: 500,

  NETWORK: 500,
  // The server sends TIMEOUT only when a request exceeded its requestTimeout.
  TIMEOUT: 408,
  STALLED: 500,
  HTTP_STATUS: 500,
  PROTOCOL: 500,
  // The server sends FILE_NOT_FOUND for GET /v1/files/<path> of a file it does not hold.
  FILE_NOT_FOUND: 404,
  FILE_UNREADABLE: 500,
  FILE_CHANGED: 500,
  CANCELLED: 500,
  STOPPED: 500,
  STATE_DIR: 500,
  STATE_DIR_LOCKED: 500,
  ROS_UNAVAILABLE: 500,
};

/**
 * The legacy API answers 400 where the native protocol is more specific: its clients know only
 * 200/400/401/404/413/429/507 (an unknown upload id on chunk/finalize is an invalid field there,
 * raised as INVALID_FIELD by those routes).
 */
const legacyOverrides: Partial<Record<UploadErrorCode, number>> = {
  CHUNKS_MISSING: 400,
  FILE_CHECKSUM_MISMATCH: 400,
  CHUNK_CHECKSUM_MISMATCH: 400,
  FILE_EXISTS: 409,
};

/** Which API a request belongs to: the statuses of the legacy API's answers differ. */
export type Api = SessionApi;

export function httpStatusOf(code: UploadErrorCode, api: Api = 'native'): number {
  return (api === 'legacy' ? legacyOverrides[code] : undefined) ?? nativeStatus[code] ?? 500;
}

/** The code for a status set by a framework error (body-parser, router) that carries none of ours. */
export function codeForFrameworkStatus(status: number): UploadErrorCode {
  if (status === 413) return 'BODY_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  if (status === 404) return 'ROUTE_NOT_FOUND';
  if (status >= 400 && status < 500) return 'BAD_REQUEST';
  return 'INTERNAL';
}
