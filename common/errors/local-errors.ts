/**
 * Error codes a program raises for itself and never receives from a server: its configuration
 * and command line, its state directory, the local files it reads, the requests it makes and
 * how they failed below HTTP, its own lifecycle. A server never sends one of these (at the HTTP
 * boundary it answers INTERNAL instead). The codes a server sends are the wire contract's
 * (common/protocol/errors/wire-errors.ts); no code is in both lists.
 */
export const localErrorCodes = {
  // Configuration and command line (both programs)
  CONFIG_INVALID: 'a configuration value is invalid',
  CONFIG_UNKNOWN_OPTION: 'an unknown option or flag was given',
  CONFIG_FILE_UNREADABLE: 'a configuration file could not be read or parsed',
  USAGE: 'the command line is not valid',
  TLS_CONFIG: 'a TLS certificate or key could not be read',
  AUTH_CONFIG:
    'the credentials a server accepts cannot be used: a weak or malformed token, a reserved or invalid uploader ' +
    'name, a tokens file others can read, or an unusable client-certificate setting',
  TLS_CERTIFICATE:
    "the server's TLS certificate was refused (self-signed, unknown CA, wrong host name, expired): configuration",
  TOKEN_FILE: 'the token file cannot be read, is empty, or is readable by group or others',

  // Where a program keeps its state (the agent's journal, the server's storage folder)
  STATE_DIR: 'the state directory is unusable',
  STATE_DIR_LOCKED: 'another agent holds the state directory',
  STATE_DISK_FULL: 'the disk of the state directory is full: its journal cannot be written',

  // Local files
  LOCAL_FILE_NOT_FOUND: 'a local file or folder does not exist',
  FILE_UNREADABLE: 'a local file could not be read',
  FILE_CHANGED: 'a local file changed while it was queued or uploading',
  UNSAFE_LOCAL_PATH: 'a local path leads through a symbolic link, or is not a regular file: it is never read',

  // A client's requests, as the client sees them
  NETWORK: 'the server could not be reached or the connection broke',
  STALLED: 'a request moved no bytes for the stall timeout',
  HTTP_STATUS: 'the server answered with an unexpected status',
  PROTOCOL: 'the server answered something the agent does not understand',
  ANSWER_MISMATCH:
    "the server's answer names another file than the one sent (path, size or SHA-256): the transfer is not verified",

  // The agent's own lifecycle
  CANCELLED: 'the upload was cancelled',
  STOPPED: 'the manager was stopped',
  ROS_UNAVAILABLE: 'ROS 2 or rclnodejs is not available',
} as const satisfies Record<string, string>;

export type LocalErrorCode = keyof typeof localErrorCodes;

/** A refused setting: which option (or ROS parameter), and where the value came from. */
export interface OptionErrorDetails {
  option?: string;
  parameter?: string;
  /** "the command line", a config file's path, "UPLOAD_AGENT_*", "setOption", … */
  source?: string;
}

/** A failure below HTTP: the system or undici error code (ECONNREFUSED, UND_ERR_SOCKET, …). */
export interface NetworkErrorDetails {
  errno?: string;
}

/** The version of a local file before and after it changed. */
export interface FileChangedDetails {
  before: { size: number; mtimeMs: number };
  after: { size: number; mtimeMs: number };
}
