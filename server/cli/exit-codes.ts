import { isUploadError, type UploadErrorCode } from '../../common/errors/upload-error.js';

/** The server program's exit codes, in one place (BSD sysexits.h, like the agent's). */
export const exitCodes = {
  OK: 0,
  /** Stopped by a second signal before closing cleanly. */
  INTERRUPTED: 1,
  /** EX_USAGE: unknown flag, bad value, an unsafe setup (non-loopback without tokens), the port in use. */
  USAGE: 64,
  /** EX_SOFTWARE: an unexpected internal error. */
  INTERNAL: 70,
  /** EX_CANTCREAT: the storage folder or its database cannot be created or written. */
  STORAGE: 73,
  /** EX_CONFIG: a config, tokens, certificate or key file cannot be read or used. */
  CONFIG: 78,
} as const;

const byCode: Partial<Record<UploadErrorCode, number>> = {
  USAGE: exitCodes.USAGE,
  CONFIG_UNKNOWN_OPTION: exitCodes.USAGE,
  CONFIG_INVALID: exitCodes.USAGE,
  CONFIG_FILE_UNREADABLE: exitCodes.CONFIG,
  TLS_CONFIG: exitCodes.CONFIG,
  STATE_DIR: exitCodes.STORAGE,
};

export function exitCodeOf(error: unknown): number {
  return isUploadError(error) ? (byCode[error.code] ?? exitCodes.INTERNAL) : exitCodes.INTERNAL;
}
