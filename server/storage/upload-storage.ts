/**
 * Where upload bytes live, behind one small interface (after tus-node-server's DataStore), so
 * the local disk and a later object-storage backend are interchangeable and faults can be
 * injected by a decorator in tests.
 *
 * A session owns named blobs in its temp area: `data` (the file being assembled) and, for the
 * legacy API, one blob per chunk. Finished files live under `completed/<uploader>/<path>`, gzip
 * copies under `compressed/<uploader>/<path>.gz`. Paths given here are already validated
 * relative paths (common/protocol/relative-path.ts); implementations must still refuse to
 * follow a symlink out of the storage root.
 */
export interface UploadStorage {
  /** Absolute root, for logs only; never sent to clients. */
  readonly root: string;

  /** Creates the session's temp area with an empty `data` blob. */
  createSession(sessionId: string): Promise<void>;
  /** Deletes the session's temp area and everything in it (no error when absent). */
  removeSession(sessionId: string): Promise<void>;
  /** Every entry of the temp area: session ids and leftovers of interrupted work (for the startup orphan sweep; removeSession deletes any of them). */
  listSessions(): Promise<string[]>;

  /**
   * Streams `source` into blob `name` starting at `offset` (the blob is created when absent) and
   * returns the number of bytes written. A write failure (ENOSPC...) rejects with the system
   * error; what was written before stays, which is harmless because nothing is acknowledged.
   * `sync`: the blob is also flushed to disk before this resolves (a whole file about to be
   * committed), which spares `commit` its own flush as long as the blob is not changed again.
   * `existing`: the blob was created with the session (`createSession`) and must not be created
   * again here: when it is gone, this rejects with an ENOENT error (see `isMissingBlob`) instead
   * of silently starting an empty one, which would hide the loss of what it held.
   */
  writeAt(sessionId: string, name: string, offset: number, source: AsyncIterable<Uint8Array>, options?: { sync?: boolean; existing?: boolean }): Promise<number>;
  /** Reads `length` bytes from `offset` of a blob, in pieces. */
  readAt(sessionId: string, name: string, offset: number, length: number): AsyncIterable<Buffer>;
  /** Size of a blob, or undefined when it does not exist. */
  blobSize(sessionId: string, name: string): Promise<number | undefined>;
  truncate(sessionId: string, name: string, length: number): Promise<void>;
  /** fdatasync a blob: flushes what was written so far (the pump does it behind the prefix, so completing only flushes the tail). */
  flush(sessionId: string, name: string): Promise<void>;
  /** Atomically replaces blob `to` by blob `from`; `toSession` defaults to the same session. */
  renameBlob(sessionId: string, from: string, to: string, toSession?: string): Promise<void>;
  removeBlob(sessionId: string, name: string): Promise<void>;
  /** Blob names of a session. */
  listBlobs(sessionId: string): Promise<string[]>;

  /**
   * Makes blob `name` of the session visible as `completed/<uploader>/<path>`: fsync the blob,
   * move it atomically (never a partial file at the final path), fsync the folder. Without
   * `replace` it never overwrites: an existing file rejects with an UploadError FILE_EXISTS.
   */
  commit(sessionId: string, name: string, uploader: string, relativePath: string, options: { replace: boolean }): Promise<void>;
  /** Size of a completed file, or undefined when there is none (INVALID_PATH when the path would leave the root). */
  completedSize(uploader: string, relativePath: string): Promise<number | undefined>;
  /** Reads a completed file from the start. */
  readCompleted(uploader: string, relativePath: string): AsyncIterable<Buffer>;
  /** Path of a completed file relative to the storage root, `completed/<uploader>/<path>`, for clients. */
  completedLocation(uploader: string, relativePath: string): string;

  /**
   * Streams `source` into `compressed/<uploader>/<path>.gz` atomically (temp blob, then rename);
   * returns the stored size. `keep(size)` decides, once the size is known, whether the copy is
   * kept; when it returns false the copy is discarded and undefined returned.
   */
  writeCompressed(uploader: string, relativePath: string, source: AsyncIterable<Uint8Array>, keep: (size: number) => boolean): Promise<number | undefined>;
  removeCompressed(uploader: string, relativePath: string): Promise<void>;
  compressedLocation(uploader: string, relativePath: string): string;

  /** Bytes available to this process on the storage volume. */
  freeSpace(): Promise<number>;
}

/** True for the error `writeAt` gives when an `existing` blob (or its session's folder) is gone. */
export function isMissingBlob(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
