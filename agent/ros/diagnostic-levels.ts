import { isUploadErrorCode, type UploadErrorCode } from '../../common/errors/upload-error.js';
import type { UploadSnapshot } from '../engine/upload-events.js';

/** diagnostic_msgs/msg/DiagnosticStatus levels (a byte; published as a number). */
export const DiagnosticLevel = { OK: 0, WARN: 1, ERROR: 2, STALE: 3 } as const;
export type DiagnosticLevelCode = (typeof DiagnosticLevel)[keyof typeof DiagnosticLevel];

/**
 * The one mapping from error codes to diagnostic levels, for the error an upload last met.
 * ERROR: an operator has to act (credentials, server full or misconfigured, a local file that
 * cannot be read); the agent keeps trying, but it will not fix itself. OK: not a problem
 * (a transient file cancelled, the agent stopping). Every other code, including codes added
 * later, is WARN: the agent retries it and it usually passes.
 */
export const errorCodeLevel: { readonly [K in UploadErrorCode]?: DiagnosticLevelCode } = {
  CONFIG_INVALID: DiagnosticLevel.ERROR,
  CONFIG_UNKNOWN_OPTION: DiagnosticLevel.ERROR,
  CONFIG_FILE_UNREADABLE: DiagnosticLevel.ERROR,
  USAGE: DiagnosticLevel.ERROR,
  BAD_REQUEST: DiagnosticLevel.ERROR,
  INVALID_FIELD: DiagnosticLevel.ERROR,
  INVALID_PATH: DiagnosticLevel.ERROR,
  UNSUPPORTED_MEDIA_TYPE: DiagnosticLevel.ERROR,
  CHUNK_INDEX_OUT_OF_RANGE: DiagnosticLevel.ERROR,
  CHUNK_SIZE_MISMATCH: DiagnosticLevel.ERROR,
  CHUNK_CONFLICT: DiagnosticLevel.ERROR,
  FILE_EXISTS: DiagnosticLevel.ERROR,
  FILE_TOO_LARGE: DiagnosticLevel.ERROR,
  BODY_TOO_LARGE: DiagnosticLevel.ERROR,
  ROUTE_NOT_FOUND: DiagnosticLevel.ERROR,
  UNAUTHORIZED: DiagnosticLevel.ERROR,
  INSUFFICIENT_STORAGE: DiagnosticLevel.ERROR,
  TLS_CONFIG: DiagnosticLevel.ERROR,
  TLS_CERTIFICATE: DiagnosticLevel.ERROR,
  TOKEN_FILE: DiagnosticLevel.ERROR,
  ANSWER_MISMATCH: DiagnosticLevel.ERROR,
  STATE_DISK_FULL: DiagnosticLevel.ERROR,
  INTERNAL: DiagnosticLevel.ERROR,
  PROTOCOL: DiagnosticLevel.ERROR,
  FILE_UNREADABLE: DiagnosticLevel.ERROR,
  UNSAFE_LOCAL_PATH: DiagnosticLevel.ERROR,
  STATE_DIR: DiagnosticLevel.ERROR,
  STATE_DIR_LOCKED: DiagnosticLevel.ERROR,
  ROS_UNAVAILABLE: DiagnosticLevel.ERROR,
  CANCELLED: DiagnosticLevel.OK,
  STOPPED: DiagnosticLevel.OK,
};

export function levelOfErrorCode(code: UploadErrorCode): DiagnosticLevelCode {
  return errorCodeLevel[code] ?? DiagnosticLevel.WARN;
}

/**
 * The error code of an upload's last error: the snapshot's `errorCode`, or else a code its
 * `lastError` starts with (`UNAUTHORIZED: ...`, `[NETWORK] ...`), if any.
 */
export function errorCodeOf(upload: Pick<UploadSnapshot, 'errorCode' | 'lastError'>): UploadErrorCode | undefined {
  if (isUploadErrorCode(upload.errorCode)) return upload.errorCode;
  const match = upload.lastError ? /^\s*\[?([A-Z][A-Z0-9_]*)\]?(?=[:\s]|$)/.exec(upload.lastError) : null;
  const code = match?.[1];
  return isUploadErrorCode(code) ? code : undefined;
}
