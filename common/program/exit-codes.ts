import { isUploadError, type UploadErrorCode } from '../errors/upload-error.js';

/**
 * The exit codes both programs use, from BSD sysexits.h, so scripts and systemd units read the
 * agent's and the server's alike. Each program names the ones it uses (agent/cli/exit-codes.ts,
 * server/cli/exit-codes.ts).
 */
export const sysexits = {
  OK: 0,
  /** EX_USAGE: a bad command line, flag or value. */
  USAGE: 64,
  /** EX_NOINPUT: an input file does not exist or cannot be read. */
  NO_INPUT: 66,
  /** EX_UNAVAILABLE: a service the program needs is not there. */
  UNAVAILABLE: 69,
  /** EX_SOFTWARE: an internal error. */
  SOFTWARE: 70,
  /** EX_CANTCREAT: an output folder or file cannot be created or written. */
  CANT_CREATE: 73,
  /** EX_TEMPFAIL: try again later. */
  TEMP_FAIL: 75,
  /** EX_CONFIG: a configuration file cannot be read or used. */
  CONFIG: 78,
} as const;

/** The exit code of the error that ends either program, where both mean the same by it. */
const shared: Partial<Record<UploadErrorCode, number>> = {
  USAGE: sysexits.USAGE,
  CONFIG_UNKNOWN_OPTION: sysexits.USAGE,
  CONFIG_INVALID: sysexits.USAGE,
  CONFIG_FILE_UNREADABLE: sysexits.CONFIG,
  TLS_CONFIG: sysexits.CONFIG,
  AUTH_CONFIG: sysexits.CONFIG,
  TLS_CERTIFICATE: sysexits.CONFIG,
  TOKEN_FILE: sysexits.CONFIG,
  STATE_DIR: sysexits.CANT_CREATE,
  STATE_DISK_FULL: sysexits.CANT_CREATE,
};

/**
 * A program's map from the error that ends it to its exit code: the program's own `overrides`
 * first, then the shared map, then `otherUploadError` for any other UploadError; anything that
 * is not an UploadError is a bug (EX_SOFTWARE).
 */
export function exitCodeMap(
  overrides: Partial<Record<UploadErrorCode, number>>,
  otherUploadError: number,
): (error: unknown) => number {
  return (error) => {
    if (!isUploadError(error)) return sysexits.SOFTWARE;
    return overrides[error.code] ?? shared[error.code] ?? otherUploadError;
  };
}
