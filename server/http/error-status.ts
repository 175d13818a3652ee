import type { UploadErrorCode } from '../../common/errors/upload-error.js';
import { wireErrorStatus } from '../../common/protocol/errors/wire-errors.js';
import type { SessionApi } from '../sessions/session-record.js';

/**
 * The one map from error codes to HTTP statuses, for both APIs: the wire contract's
 * (common/protocol/errors/wire-errors.ts). A local code (a program's own: config, state
 * directory, local files) is never a client's answer: 500.
 */
const nativeStatus: Partial<Record<UploadErrorCode, number>> = wireErrorStatus;

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
