import { isUploadError, type UploadErrorCode } from '../../common/errors/upload-error.js';

/**
 * The agent program's exit codes, in one place. They follow BSD sysexits.h where one fits, so
 * scripts and systemd units can tell a bad command line from a busy state directory.
 */
export const exitCodes = {
  /** Everything done (for `upload`: every file verified by the server). */
  OK: 0,
  /** Some files failed to upload. */
  UPLOAD_FAILED: 1,
  /** EX_USAGE: unknown command or flag, a bad value (URL, size, duration, enum). */
  USAGE: 64,
  /** EX_NOINPUT: a file or folder named on the command line does not exist or cannot be read. */
  NO_INPUT: 66,
  /** EX_UNAVAILABLE: ROS 2 was required (--ros) but is not available; the server is unreachable. */
  UNAVAILABLE: 69,
  /** EX_SOFTWARE: an unexpected internal error. */
  INTERNAL: 70,
  /** EX_CANTCREAT: the state directory cannot be created, read or written. */
  STATE_DIR: 73,
  /** EX_TEMPFAIL: another agent holds the state directory; try again once it stopped. */
  LOCKED: 75,
  /** EX_CONFIG: the config file cannot be read or parsed. */
  CONFIG: 78,
} as const;

const byCode: Partial<Record<UploadErrorCode, number>> = {
  USAGE: exitCodes.USAGE,
  CONFIG_UNKNOWN_OPTION: exitCodes.USAGE,
  CONFIG_INVALID: exitCodes.USAGE,
  CONFIG_FILE_UNREADABLE: exitCodes.CONFIG,
  LOCAL_FILE_NOT_FOUND: exitCodes.NO_INPUT,
  FILE_UNREADABLE: exitCodes.NO_INPUT,
  STATE_DIR: exitCodes.STATE_DIR,
  STATE_DIR_LOCKED: exitCodes.LOCKED,
  ROS_UNAVAILABLE: exitCodes.UNAVAILABLE,
  NETWORK: exitCodes.UNAVAILABLE,
  TLS_CONFIG: exitCodes.CONFIG,
};

/** The exit code for an error that ends the program. */
export function exitCodeOf(error: unknown): number {
  if (isUploadError(error)) return byCode[error.code] ?? exitCodes.UPLOAD_FAILED;
  return exitCodes.INTERNAL;
}
