import type { CompletedFile } from '../../common/protocol/native-protocol.js';

export type SessionApi = 'native' | 'legacy';
/** `completing` is never persisted as final: after a crash such a session is open again. */
export type SessionState = 'open' | 'completing' | 'complete';

/** One upload session as stored in SQLite. Times are epoch milliseconds. */
export interface SessionRecord {
  id: string;
  api: SessionApi;
  uploader: string;
  /** Normalised relative path (the legacy API's `filename`). */
  path: string;
  size: number;
  /** Native only. */
  fingerprint: string | null;
  /** Native only; the legacy API's chunks have whatever size the client sends. */
  chunkSize: number | null;
  chunkCount: number;
  /** Native: the sha256 given at create, if any. */
  sha256Hint: string | null;
  /** Legacy: the MD5 given at init, if any. */
  md5Expected: string | null;
  metadata: Record<string, unknown> | null;
  replace: boolean;
  /** Compression at rest was asked for and the size reaches the threshold. */
  compress: boolean;
  state: SessionState;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  /** Set when complete: the answer repeated to a client that completes again. */
  result: CompletionResult | null;
}

/**
 * A native session's chunk size. Only legacy sessions have none (their chunks have whatever size
 * the client sends), so a native session without one is a bug, reported as one.
 */
export function nativeChunkSize(record: SessionRecord): number {
  if (record.chunkSize === null)
    throw new Error(`Internal error: the ${record.api} session ${record.id} has no chunk size`);
  return record.chunkSize;
}

/** What a completed session remembers (its tombstone), for both APIs. */
export interface CompletionResult {
  file: CompletedFile;
  /** The path actually used (the legacy API may store under a unique name). */
  storedPath: string;
  md5: string | null;
  compressedLocation: string | null;
  compressionPending: boolean;
}

export interface ChunkRecord {
  index: number;
  size: number;
  crc: number;
  /**
   * Byte offset of the chunk in the staged file once it is there; null while it waits in its
   * spool (legacy chunks until the chunks before them arrived, native ones that arrived early on
   * a backend whose chunks cannot be read back).
   */
  offset: number | null;
}

/** A completed file in the index. */
export interface FileRecord {
  uploader: string;
  path: string;
  size: number;
  sha256: string;
  md5: string | null;
  fingerprint: string;
  completedAt: number;
  metadata: Record<string, unknown> | null;
  compressedSize: number | null;
  sessionId: string | null;
}

/**
 * A session's running hash as a shared store keeps it (the same shape as integrity/'s
 * SavedPrefix): chunks 0..chunks-1, `bytes` long, and hash-wasm's saved SHA-256 (and legacy MD5) state.
 */
export interface StoredPrefix {
  chunks: number;
  bytes: number;
  sha256: Uint8Array;
  md5: Uint8Array | null;
}

/** Moves a session's stored prefix from `from` chunks to `next`, when it is still at `from`. */
export interface PrefixAdvance {
  from: number;
  next: StoredPrefix;
}
