/**
 * Where upload bytes live, behind one small interface (after tus-node-server's DataStore), so
 * that the local disk (local-disk-storage.ts) and an object store are two implementations of
 * one contract, and faults can be injected by a decorator in tests. Everything shaped by one
 * backend (fsyncs, temp folders, hard links, write batching, symlink-safe paths) stays inside
 * its implementation.
 *
 * A file being received is a **staging** upload made of **parts**: chunk n is part n, at its
 * byte offset in the file. Parts may arrive in any order, from any server process, and
 * writing a part again replaces it. On S3 a staging upload maps onto a multipart upload (part
 * n+1; 5 MiB minimum except the last) or onto one object per part under a staging prefix;
 * on the local disk it is one file written in place. `commit` makes the verified file visible
 * under its final key in one step, never before; nothing a client can read exists before it.
 *
 * A **spooled** part is a body kept aside before its place is known or before it may replace
 * anything: the legacy API's form parts (the form may name the upload after its file part, and
 * a re-sent chunk must not replace the held one before it is checked), and its chunks that wait
 * for the chunks before them. Spools belong to a staging upload (or to none, while the form has
 * not said which) and go with it.
 *
 * Stored files live under `completed/<uploader>/<path>`, their gzip copies (the legacy API's
 * compression at rest) under `compressed/<uploader>/<path>.gz` (stored-file-layout.ts). Paths
 * given here are already validated relative paths (common/protocol/relative-path.ts).
 * **Containment is per uploader:** nothing an implementation does for `<uploader>/<path>` may
 * read, write or replace anything outside `completed/<uploader>/` (or `compressed/<uploader>/`),
 * another uploader's files included, whatever a local process plants or swaps meanwhile; where
 * the backend has symlinks, it never follows one (INVALID_PATH naming it when one is met).
 */
export interface UploadStorage {
  /** Where the storage is (a folder, a bucket), for logs only; never sent to clients. */
  readonly root: string;

  /**
   * How the backend keeps a staging upload created with `chunks` (the native protocol's
   * fixed-size chunks); absent when chunks may have any size and can be read back before commit
   * (the local disk). On S3 such a staging upload is a multipart upload at the final key: every
   * chunk but the last must be at least `minChunkSize`, there are at most `maxChunks`, and a
   * written chunk cannot be read back before commit (so one that arrives before the chunks
   * ahead of it are hashed is kept in a spool until they are; see runtime/hash-pump.ts).
   */
  readonly chunkedStaging?: { readonly minChunkSize: number; readonly maxChunks: number };

  /**
   * Starts a staging upload. `wholeFile`: the file arrives in one part, written once and
   * committed at once (a whole-file PUT); a backend may make that single write durable in the
   * same pass and skip per-upload bookkeeping (S3: a single PutObject to a staging key).
   * `chunks`: parts are chunks of `size` bytes (the last one shorter) of a file that will be
   * committed as `target` and nowhere else (S3: a multipart upload at the final key, chunk n as
   * part n+1, visible only once completed).
   */
  createStaging(
    id: string,
    options?: { wholeFile?: boolean; chunks?: { size: number; target: StoredFile } },
  ): Promise<void>;
  /**
   * Streams `body` into part `part.index`, which starts at byte `part.offset` of the file, and
   * resolves with the number of bytes written. Replaces an earlier write of the part. A write
   * failure (ENOSPC...) rejects with the system error; what was written stays, which is
   * harmless because nothing is acknowledged before it is verified. Rejects with an error that
   * `isMissingStaging` recognises when the staging upload is gone (deleted by hand, or aborted
   * elsewhere), instead of silently starting an empty one.
   */
  writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number>;
  /**
   * Reads `length` bytes of the staged file from `offset` (parts already written), in pieces.
   * Not for a staging upload created with `chunks` on a backend with `chunkedStaging`.
   */
  readStaged(id: string, offset: number, length: number): AsyncIterable<Buffer>;
  /** Whether the staging upload still exists (it can vanish while the server runs). */
  hasStaging(id: string): Promise<boolean>;
  /**
   * Makes the staged file, cut to `size` bytes, visible as `file` in one step, durably (on the
   * local disk: fsync, atomic link or rename, fsync of the folder; on S3: completing the
   * multipart upload, or a copy, under the final key). Without `replace` it never overwrites: an
   * existing file rejects with an UploadError FILE_EXISTS. With `replace` the earlier file's gzip
   * copy goes too (it described the old content). The staging upload is gone afterwards.
   * Callers serialise commits of one file (commit-file.ts takes the path's lock, shared by all
   * server processes): an object store cannot refuse to overwrite atomically (Ceph ignores
   * If-None-Match on CompleteMultipartUpload), so the S3 backend looks, then completes.
   */
  commit(id: string, file: StoredFile, options: { size: number; replace: boolean }): Promise<void>;
  /** Deletes a staging upload with its parts and spools (no error when it is gone). */
  abortStaging(id: string): Promise<void>;
  /**
   * Every staging upload there is, and anything else in the staging area (leftovers of
   * interrupted work, spools of no upload), for the start-up sweep: `abortStaging` deletes any of them.
   * `unchangedSince` (epoch ms): only what was not written since then, where the backend can tell (a
   * sweep while other server processes create uploads must leave their new ones alone).
   */
  listStaging(options?: { unchangedSince?: number }): Promise<string[]>;

  /**
   * Streams `body` into a spool (created, or replaced); resolves with its length. `length`, when
   * known, lets S3 stream it in one request (an unknown length is sent in buffered 5 MiB parts).
   */
  writeSpool(spool: SpoolRef, body: AsyncIterable<Uint8Array>, length?: number): Promise<number>;
  /** Reads the first `length` bytes of a spool, in pieces. */
  readSpool(spool: SpoolRef, length: number): AsyncIterable<Buffer>;
  /** Moves a spool to another name (and staging upload), replacing what was there, atomically. */
  moveSpool(from: SpoolRef, to: SpoolRef): Promise<void>;
  /** Deletes a spool (no error when it is gone). */
  removeSpool(spool: SpoolRef): Promise<void>;

  /** The size of a stored file, or undefined when there is none (INVALID_PATH when the path would leave the root). */
  stat(file: StoredFile): Promise<{ size: number } | undefined>;
  /** Reads a stored file from the start, in pieces. */
  read(file: StoredFile): AsyncIterable<Buffer>;
  /**
   * Reads `length` bytes of a stored file from byte `offset`, in pieces (downloads with a Range
   * header; S3: a GetObject with Range). The caller has checked the range against `stat`.
   */
  readRange(file: StoredFile, offset: number, length: number): AsyncIterable<Buffer>;
  /**
   * Every stored file, in no particular order, for the start-up reconciliation of the index
   * with what is really stored (jobs/reconcile-index.ts). Only regular files are listed; on the
   * local disk nothing is followed, symlinks included.
   */
  listStored(): AsyncIterable<StoredFileInfo>;
  /**
   * Streams `body` into the gzip copy of `file`, made visible only once complete; resolves with
   * its size. `keep(size)` decides, once the size is known, whether the copy is kept; when it
   * returns false the copy is discarded and undefined returned.
   */
  writeCompressed(
    file: StoredFile,
    body: AsyncIterable<Uint8Array>,
    keep: (size: number) => boolean,
  ): Promise<number | undefined>;

  /**
   * Bytes this process may still write, where the backend has such a limit (a volume); a bucket
   * has none, and without this method uploads are admitted by maxFileSize alone.
   */
  freeSpace?(): Promise<number>;
  /** Throws when the backend cannot be used now (for GET /ready: S3 checks the bucket). */
  checkReady?(): Promise<void>;
  /** Releases what the backend holds (connections); called once the server has stopped. */
  close?(): Promise<void>;
}

/** A stored file: its uploader and its relative path. */
export interface StoredFile {
  uploader: string;
  path: string;
}

/** A stored file as listed by `listStored`. */
export interface StoredFileInfo extends StoredFile {
  size: number;
  /**
   * When the stored file last changed (epoch milliseconds: ctime on a local disk, the object's
   * Last-Modified in a bucket). A file changed after its index entry was written (its
   * `completedAt`) is hashed again at start-up.
   */
  changedAt: number;
}

/** Where a part goes: chunk `index`, whose first byte is byte `offset` of the file. */
export interface PartPlace {
  index: number;
  offset: number;
  /** The part's exact length, when known up front (S3 sends it as Content-Length; a body of another length fails). */
  length?: number;
}

/** A spooled body: `name` in a staging upload's spool area, or in the shared one while `staging` is undefined. */
export interface SpoolRef {
  staging: string | undefined;
  name: string;
}

/** True for the error `writePart` gives when its staging upload is gone. */
export function isMissingStaging(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
