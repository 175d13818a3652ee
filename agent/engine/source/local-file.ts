import { createHash, type Hash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, type FileHandle } from 'node:fs/promises';
import { kindOf, localFileError, openNoFollow } from '../../../common/files/no-follow.js';
import { UploadError } from '../../../common/errors/upload-error.js';
import { fingerprintOf, fingerprintRanges } from '../../../common/protocol/fingerprint.js';

/** What identifies a version of a local file: a change in either means "changed". */
export interface FileVersion {
  size: number;
  mtimeMs: number;
}

/** Block size of local reads that only hash (resume, dedup checks). */
const HASH_BLOCK = 1024 * 1024;

/**
 * The version of a file about to be queued (lstat: a symbolic link is refused here already, with
 * the same error the open would give; see SourceFile for the check that counts).
 */
export async function statFile(filePath: string): Promise<FileVersion> {
  let info: Stats;
  try {
    info = await lstat(filePath);
  } catch (error) {
    throw fileError(filePath, error);
  }
  if (!info.isFile())
    throw new UploadError(
      'UNSAFE_LOCAL_PATH',
      `${filePath} is not read: it is ${kindOf(info)}, not a regular file ` +
        '(symbolic links are never followed; name the file it points to)',
    );
  return { size: info.size, mtimeMs: info.mtimeMs };
}

export function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * One attempt's view of the local file: opened once without following a symbolic link anywhere
 * in its path (common/files/no-follow.ts: a regular file, at exactly this path when it was
 * opened), and read only through this descriptor, so a link or another file swapped in at the
 * path afterwards is never read. `version` is the descriptor's fstat at open: what this attempt
 * uploads, and what every check compares with.
 */
export class SourceFile {
  readonly path: string;
  readonly handle: FileHandle;
  readonly version: FileVersion;
  readonly #dev: number;
  readonly #ino: number;

  private constructor(
    filePath: string,
    handle: FileHandle,
    stats: { size: number; mtimeMs: number; dev: number; ino: number },
  ) {
    this.path = filePath;
    this.handle = handle;
    this.version = { size: stats.size, mtimeMs: stats.mtimeMs };
    this.#dev = stats.dev;
    this.#ino = stats.ino;
  }

  static async open(filePath: string): Promise<SourceFile> {
    const { handle, stats } = await openNoFollow(filePath);
    return new SourceFile(filePath, handle, stats);
  }

  /**
   * Throws FILE_CHANGED when the opened file changed (fstat: size or mtime) or the path no
   * longer leads to it (replaced by another file or a link), LOCAL_FILE_NOT_FOUND when the path
   * is gone (a plain split deleted in file-compression mode).
   */
  async assertUnchanged(): Promise<void> {
    let now: Stats;
    try {
      now = await this.handle.stat();
    } catch (error) {
      throw fileError(this.path, error);
    }
    if (!sameVersion(now, this.version)) throw changed(this.path, this.version, now);
    let at: Stats;
    try {
      at = await lstat(this.path);
    } catch (error) {
      throw fileError(this.path, error);
    }
    if (at.dev !== this.#dev || at.ino !== this.#ino)
      throw new UploadError(
        'FILE_CHANGED',
        `${this.path} was replaced by another ${at.isSymbolicLink() ? 'path (a symbolic link)' : 'file'} ` +
          'during its upload; restarting it',
        { details: { before: this.version, after: { size: at.size, mtimeMs: at.mtimeMs } } },
      );
  }

  /** The whole file (at most a small file's size) in memory, read through the descriptor. */
  readWhole(): Promise<Buffer> {
    return readRange(this.handle, this.path, 0, this.version.size);
  }

  /** The protocol's content fingerprint (common/protocol/fingerprint.ts), read through the descriptor. */
  async fingerprint(): Promise<string> {
    const samples: Buffer[] = [];
    for (const [position, count] of fingerprintRanges(this.version.size))
      samples.push(await readRange(this.handle, this.path, position, count));
    return fingerprintOf(this.version.size, samples);
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

function changed(filePath: string, before: FileVersion, after: FileVersion): UploadError {
  return new UploadError(
    'FILE_CHANGED',
    `${filePath} changed during its upload (size ${before.size} → ${after.size}, ` +
      `mtime ${new Date(before.mtimeMs).toISOString()} → ${new Date(after.mtimeMs).toISOString()}); ` +
      'restarting it',
    { details: { before, after: { size: after.size, mtimeMs: after.mtimeMs } } },
  );
}

/**
 * Reads `length` bytes at `position` into `target` (a chunk buffer, or a new buffer when none is
 * given) and returns the view of those bytes. One chunk is read whole before it is sent: the
 * protocol sends the chunk's CRC in a header, so it must be known before the body goes out, and a
 * retry re-sends the same bytes without reading the disk again. A short read means the file
 * shrank: FILE_CHANGED.
 */
export async function readRange(
  handle: FileHandle,
  filePath: string,
  position: number,
  length: number,
  target?: Buffer,
): Promise<Buffer> {
  const buffer = target ? target.subarray(0, length) : Buffer.allocUnsafe(length);
  if (buffer.length < length)
    throw new UploadError('INTERNAL', `a buffer of ${target?.length} bytes cannot hold ${length} bytes`);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, done, length - done, position + done));
    } catch (error) {
      throw fileError(filePath, error);
    }
    if (bytesRead === 0) {
      throw new UploadError(
        'FILE_CHANGED',
        `${filePath} is shorter than expected (ends before byte ${position + length}); restarting it`,
      );
    }
    done += bytesRead;
  }
  return buffer;
}

/** Hashes `length` bytes at `position` into `hash`, in bounded blocks (local disk only). */
export async function hashRange(
  handle: FileHandle,
  filePath: string,
  position: number,
  length: number,
  hash: { update(data: Uint8Array): unknown },
  signal?: AbortSignal,
): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(HASH_BLOCK, Math.max(1, length)));
  let done = 0;
  while (done < length) {
    signal?.throwIfAborted();
    const want = Math.min(buffer.length, length - done);
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(buffer, 0, want, position + done));
    } catch (error) {
      throw fileError(filePath, error);
    }
    if (bytesRead === 0) {
      throw new UploadError(
        'FILE_CHANGED',
        `${filePath} is shorter than expected (ends before byte ${position + length}); restarting it`,
      );
    }
    hash.update(buffer.subarray(0, bytesRead));
    done += bytesRead;
  }
}

/** The SHA-256 of a whole local file (dedup checks), read in bounded blocks. */
export async function sha256OfFile(
  handle: FileHandle,
  filePath: string,
  size: number,
  signal?: AbortSignal,
): Promise<string> {
  const hash: Hash = createHash('sha256');
  await hashRange(handle, filePath, 0, size, hash, signal);
  return hash.digest('hex');
}

/** Maps a file system error to LOCAL_FILE_NOT_FOUND / FILE_UNREADABLE naming the file. */
export function fileError(filePath: string, error: unknown): UploadError {
  return localFileError(filePath, error);
}
