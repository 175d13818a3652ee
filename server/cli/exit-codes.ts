import { exitCodeMap } from '../../common/program/exit-codes.js';

/** The server program's exit codes, in one place (BSD sysexits.h, like the agent's). */
export const exitCodes = {
  OK: 0,
  /** Stopped by a second signal before closing cleanly. */
  INTERRUPTED: 1,
  /** EX_USAGE: unknown flag, bad value, an unsafe setup (non-loopback without tokens), the port in use. */
  USAGE: 64,
  /** EX_SOFTWARE: an unexpected internal error. */
  INTERNAL: 70,
  /** EX_CANTCREAT: the storage folder or its database cannot be created or written (or is full at start-up). */
  STORAGE: 73,
  /** EX_CONFIG: a config, tokens, certificate or key file cannot be read or used. */
  CONFIG: 78,
} as const;

/**
 * The exit code for an error that ends the program: the shared map (common/program/exit-codes.ts);
 * any other error is internal.
 */
export const exitCodeOf = exitCodeMap({ INSUFFICIENT_STORAGE: exitCodes.STORAGE }, exitCodes.INTERNAL);
