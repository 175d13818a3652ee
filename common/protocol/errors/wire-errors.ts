/**
 * The error codes of the wire contract: what a server may send in an error answer's `code`
 * (`{success:false, error, code}`), with what each means and the HTTP status it comes with.
 * A client may match on these; a code missing here is never sent (a server answers INTERNAL
 * instead). Codes a program only raises for itself (a local file, its state directory, its
 * configuration) are in common/errors/local-errors.ts; no code is in both lists.
 */
export const wireErrorCodes = {
  // The request is refused: the client has to change something.
  BAD_REQUEST: 'the request is malformed',
  INVALID_FIELD: 'a field is missing or has the wrong type or range',
  INVALID_PATH: 'a file path is not a safe relative path',
  UNSUPPORTED_MEDIA_TYPE: 'the request body has the wrong content type or encoding',
  CHUNK_INDEX_OUT_OF_RANGE: 'a chunk index is outside the session',
  CHUNK_SIZE_MISMATCH: 'a chunk body does not have the expected length',
  CHUNK_CHECKSUM_MISMATCH: 'a chunk failed its checksum and was not stored',
  REQUEST_CHECKSUM_MISMATCH:
    'the request was damaged in transit (its X-Request-Checksum does not match); send it again',
  CHUNK_CONFLICT: 'a chunk was re-sent with content different from the acknowledged one',
  CHUNKS_MISSING: 'completion was asked for before every chunk arrived',
  FILE_CHECKSUM_MISMATCH: 'the whole file failed its checksum',
  SESSION_NOT_FOUND: 'no such upload session for this uploader',
  SESSION_BUSY: 'the session is being completed or cancelled',
  FILE_EXISTS: 'a different file is already stored at this path',
  FILE_NOT_FOUND: 'the server holds no stored file at this path for this uploader',
  FILE_TOO_LARGE: 'the file is over the maximum size',
  BODY_TOO_LARGE: 'a JSON or form request body is over its size limit',
  LENGTH_REQUIRED: 'the request body must declare its length (Content-Length)',
  ROUTE_NOT_FOUND: 'no such route',
  UNAUTHORIZED: 'a bearer token is missing or wrong',
  RATE_LIMITED: 'too many requests; wait for Retry-After',
  TOO_MANY_SESSIONS: 'the uploader has too many unfinished upload sessions; wait for Retry-After',
  TIMEOUT: "a request took longer than its time limit (the server's requestTimeout, or a client's own timeout)",
  RANGE_NOT_SATISFIABLE: 'a download asked for a byte range outside the file',

  // The server cannot take it now.
  INSUFFICIENT_STORAGE: 'not enough free disk space',
  SERVER_UNAVAILABLE: 'the server is shutting down or overloaded',
  INTERNAL: 'an unexpected internal error',
} as const satisfies Record<string, string>;

export type WireErrorCode = keyof typeof wireErrorCodes;

/**
 * The HTTP status each wire code is sent with (the native API; the legacy dashboard API
 * narrows some to 400, see the server's error-status). Typed over every code, so a new code
 * cannot be added without its status.
 */
export const wireErrorStatus: Readonly<Record<WireErrorCode, number>> = {
  BAD_REQUEST: 400,
  INVALID_FIELD: 400,
  INVALID_PATH: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  CHUNK_INDEX_OUT_OF_RANGE: 400,
  CHUNK_SIZE_MISMATCH: 400,
  CHUNK_CHECKSUM_MISMATCH: 422,
  REQUEST_CHECKSUM_MISMATCH: 400,
  CHUNK_CONFLICT: 409,
  CHUNKS_MISSING: 409,
  FILE_CHECKSUM_MISMATCH: 422,
  SESSION_NOT_FOUND: 404,
  SESSION_BUSY: 409,
  FILE_EXISTS: 409,
  FILE_NOT_FOUND: 404,
  FILE_TOO_LARGE: 413,
  BODY_TOO_LARGE: 413,
  LENGTH_REQUIRED: 411,
  ROUTE_NOT_FOUND: 404,
  UNAUTHORIZED: 401,
  RATE_LIMITED: 429,
  TOO_MANY_SESSIONS: 429,
  TIMEOUT: 408,
  RANGE_NOT_SATISFIABLE: 416,
  INSUFFICIENT_STORAGE: 507,
  SERVER_UNAVAILABLE: 503,
  INTERNAL: 500,
};

/**
 * What an error of a wire code carries besides its message: what the answer's body says
 * (`missing`, `retryAfter`), and on the client, the HTTP answer it came in (`status`,
 * `serverCode`).
 */
export interface WireErrorDetails {
  /** The HTTP status of the answer (set by the client that received it). */
  status?: number;
  /** The code exactly as the server sent it (set by the client; kept when it knows no such code). */
  serverCode?: string;
  /** Seconds to wait before trying again (RATE_LIMITED; Retry-After). */
  retryAfter?: number;
  /** Chunk indexes the server lacks or found damaged (CHUNKS_MISSING, FILE_CHECKSUM_MISMATCH). */
  missing?: number[];
}

export function isWireErrorCode(value: unknown): value is WireErrorCode {
  return typeof value === 'string' && Object.hasOwn(wireErrorCodes, value);
}
