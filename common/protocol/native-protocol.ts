/**
 * The native protocol spoken by our agent and server (documented in docs/http-api.md).
 * Both sides import these types and names, so they cannot drift apart.
 */
import type { WireErrorCode } from './errors/wire-errors.js';

export const PROTOCOL_VERSION = 1;
export const API_PREFIX = '/v1';

/**
 * Where a server listens unless told otherwise, and so where an agent without a server URL
 * looks for one: this machine only (a server reachable from elsewhere needs tokens), port 8080
 * (the Python dashboard's).
 */
export const DEFAULT_SERVER_HOST = '127.0.0.1';
export const DEFAULT_SERVER_PORT = 8080;

/** Default and bounds of the chunk size. 8 MiB: S3 multipart's minimum part is 5 MiB. */
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** The most chunks one session may have (a 5 GiB file needs at least 64 KiB chunks). */
export const MAX_CHUNK_COUNT = 100_000;
/**
 * The largest file that may be sent whole in one request (PUT /v1/files/<path>) instead of a
 * session: one request instead of three makes small files (configs, metadata.yaml, short
 * splits) cheap. Larger files must use a session.
 */
export const MAX_WHOLE_FILE_SIZE = 8 * 1024 * 1024;
/** The largest `metadata` object accepted, serialised as JSON. */
export const MAX_METADATA_BYTES = 64 * 1024;
/** The longest relative path accepted, in UTF-8 bytes, and the longest single segment. */
export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;

export const routes = {
  sessions: `${API_PREFIX}/sessions`,
  session: (id: string) => `${API_PREFIX}/sessions/${encodeURIComponent(id)}`,
  chunk: (id: string, index: number) => `${API_PREFIX}/sessions/${encodeURIComponent(id)}/chunks/${index}`,
  complete: (id: string) => `${API_PREFIX}/sessions/${encodeURIComponent(id)}/complete`,
  file: (relativePath: string) => `${API_PREFIX}/files/${relativePath.split('/').map(encodeURIComponent).join('/')}`,
  health: '/health',
} as const;

export const headers = {
  /** `crc32:<8 lowercase hex digits>` over the chunk's decoded bytes. */
  chunkChecksum: 'x-chunk-checksum',
  /**
   * Optional: the SHA-256 (64 hex digits) of the file's bytes from the start through the end of
   * this chunk. A chunk that arrives next in order is verified against it instead of its CRC-32.
   */
  chunkPrefixSha256: 'x-chunk-prefix-sha256',
  /** Whole-file upload (PUT /v1/files/<path>): the file's SHA-256, 64 hex digits. Required. */
  contentSha256: 'x-content-sha256',
  /** Whole-file upload: the `metadata` object as base64url-encoded JSON. Optional. */
  uploadMetadata: 'x-upload-metadata',
  /** Whole-file upload: `true` allows replacing a different file stored at the path. Optional. */
  uploadReplace: 'x-upload-replace',
  /**
   * `crc32:<8 lowercase hex>` over the request's method, target, covered headers and JSON body
   * (request-checksum.ts).
   */
  requestChecksum: 'x-request-checksum',
  authorization: 'authorization',
  retryAfter: 'retry-after',
} as const;

/** POST /v1/sessions: create a session, or resume the one that exists for the same file. */
export interface CreateSessionRequest {
  /** Relative path with `/` separators, for example `run1/run1_0.mcap`. Stored under `completed/<uploader>/<path>`. */
  path: string;
  /** File size in bytes. */
  size: number;
  /** Content fingerprint (see fingerprint.ts): identifies the same file across restarts without reading all of it. */
  fingerprint: string;
  /** Requested chunk size; the server answers with the size in force (an existing session keeps its own). */
  chunkSize?: number;
  /** The whole file's SHA-256, when the client already knows it: makes the "already complete" answer exact. */
  sha256?: string;
  /** Free-form JSON object stored with the file (at most MAX_METADATA_BYTES). */
  metadata?: Record<string, unknown>;
  /** Allow replacing a different file already stored at `path` (when the session completes). */
  replace?: boolean;
  /**
   * Also keep a gzip copy at rest under `compressed/` (as the legacy dashboard API's `compression`), when the
   * file is at least the server's compression threshold and the copy is smaller. Default false.
   */
  compress?: boolean;
}

export interface OpenSession {
  state: 'open';
  id: string;
  path: string;
  size: number;
  chunkSize: number;
  chunkCount: number;
  /** Indexes of the chunks the server holds and has verified, ascending. */
  received: number[];
  /** True when this answer resumed an existing session. */
  resumed: boolean;
  /** ISO 8601: when the server deletes the session if nothing more happens. */
  expiresAt: string;
}

export interface CompletedFile {
  state: 'complete';
  path: string;
  size: number;
  sha256: string;
  /** ISO 8601. */
  completedAt: string;
  /** Present when a gzip copy was kept at rest. */
  compressedSize?: number;
}

/** 201 (new) or 200 (resumed, or already complete). */
export type CreateSessionResponse = OpenSession | CompletedFile;

/** GET /v1/sessions/:id */
export type SessionStatusResponse =
  | (OpenSession | (Omit<OpenSession, 'state'> & { state: 'completing' }))
  | (CompletedFile & { id: string });

/** PUT /v1/sessions/:id/chunks/:index answers 200 with this. */
export interface ChunkResponse {
  index: number;
  /** How many chunks the server now holds. */
  receivedCount: number;
  chunkCount: number;
  /** True when the chunk had already been acknowledged and the body was discarded. */
  duplicate: boolean;
}

/** POST /v1/sessions/:id/complete */
export interface CompleteRequest {
  /** The whole file's SHA-256 as the client computed it; the server refuses a mismatch. */
  sha256: string;
}
export type CompleteResponse = CompletedFile;

/**
 * PUT /v1/files/<path>: a whole small file (at most MAX_WHOLE_FILE_SIZE) in one request, with
 * headers `x-content-sha256` (required), `x-upload-metadata` and `x-upload-replace` (optional),
 * `Content-Type: application/octet-stream`, optionally `Content-Encoding: gzip`. Answers 201 with
 * the stored file, or 200 when the same content was already stored there (nothing changed).
 */
export type PutFileResponse = CompletedFile;

/** Every error response, from both APIs: `success:false` keeps the legacy dashboard API's clients working. */
export interface ErrorResponse {
  success: false;
  error: string;
  code: WireErrorCode;
  /** CHUNKS_MISSING and FILE_CHECKSUM_MISMATCH: the indexes the client must (re)send. */
  missing?: number[];
  /** 429 and 503: seconds to wait (also in the Retry-After header). */
  retryAfter?: number;
}

export interface HealthResponse {
  status: 'ok';
  timestamp: string;
  version: string;
  features: string[];
  protocol: number;
}
