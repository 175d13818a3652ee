import { exitCodeMap, sysexits } from '../../common/program/exit-codes.js';

/** The agent program's exit codes, named for what they mean to it (BSD sysexits.h where one fits). */
export const exitCodes = {
  /** Everything done (for `upload`: every file verified by the server). */
  OK: sysexits.OK,
  /** Some files failed to upload. */
  UPLOAD_FAILED: 1,
  /** Unknown command or flag, a bad value (URL, size, duration, enum). */
  USAGE: sysexits.USAGE,
  /** A file or folder named on the command line does not exist or cannot be read. */
  NO_INPUT: sysexits.NO_INPUT,
  /** ROS 2 was required (--ros) but is not available; the server is unreachable. */
  UNAVAILABLE: sysexits.UNAVAILABLE,
  /** An unexpected internal error. */
  INTERNAL: sysexits.SOFTWARE,
  /** The state directory cannot be created, read or written (for `upload`, also: its disk is full). */
  STATE_DIR: sysexits.CANT_CREATE,
  /** Another agent holds the state directory; try again once it stopped. */
  LOCKED: sysexits.TEMP_FAIL,
  /** The config, TLS or token file cannot be used; for `upload`, the server's certificate is refused. */
  CONFIG: sysexits.CONFIG,
} as const;

/**
 * The exit code for an error that ends the program: the shared map, with the agent's own codes, and
 * 1 for an upload that failed.
 */
export const exitCodeOf = exitCodeMap(
  {
    LOCAL_FILE_NOT_FOUND: exitCodes.NO_INPUT,
    FILE_UNREADABLE: exitCodes.NO_INPUT,
    UNSAFE_LOCAL_PATH: exitCodes.NO_INPUT,
    STATE_DIR_LOCKED: exitCodes.LOCKED,
    ROS_UNAVAILABLE: exitCodes.UNAVAILABLE,
    NETWORK: exitCodes.UNAVAILABLE,
  },
  exitCodes.UPLOAD_FAILED,
);
