import { createHash, type Hash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { UploadError } from '../../../common/errors/upload-error.js';

/** What identifies a version of a local file: a change in either means "changed". */
export interface FileVersion {
  size: number;
  mtimeMs: number;
}

/** Block size of local reads that only hash (resume, dedup checks). */
const HASH_BLOCK = 1024 * 1024;

export async function statFile(filePath: string): Promise<FileVersion> {
  try {
    const info = await stat(filePath);
    if (!info.isFile()) throw new UploadError('FILE_UNREADABLE', `${filePath} is not a regular file`);
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch (error) {
    throw fileError(filePath, error);
  }
}

export function sameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Throws FILE_CHANGED when the file on disk is no longer `expected`. */
export async function assertUnchanged(filePath: string, expected: FileVersion): Promise<void> {
  const now = await statFile(filePath);
  if (!sameVersion(now, expected)) {
    throw new UploadError(
      'FILE_CHANGED',
      `${filePath} changed during its upload (size ${expected.size} → ${now.size}, ` +
        `mtime ${new Date(expected.mtimeMs).toISOString()} → ${new Date(now.mtimeMs).toISOString()}); ` +
        `restarting it`,
      { details: { before: expected, after: now } },
    );
  }
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

/** A whole small file (`size` bytes, as stat'ed) in memory: open, read, close. */
export async function readWholeFile(filePath: string, size: number): Promise<Buffer> {
  let handle: FileHandle;
  try {
    handle = await open(filePath, 'r');
  } catch (error) {
    throw fileError(filePath, error);
  }
  try {
    return await readRange(handle, filePath, 0, size);
  } finally {
    await handle.close().catch(() => undefined);
  }
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
  if (error instanceof UploadError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new UploadError('LOCAL_FILE_NOT_FOUND', `${filePath} does not exist (any more)`, { cause: error });
  }
  return new UploadError('FILE_UNREADABLE', `${filePath} cannot be read: ${(error as Error).message}`, {
    cause: error,
  });
}
