import { constants, type Stats } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { UploadError } from '../../common/errors/upload-error.js';
import { writeBatched } from './batched-writer.js';

/** Mode of the files the server creates (the umask may narrow it further). */
export const FILE_MODE = 0o640;
/** Flags that never follow a symlink in the last place: a planted link gives ELOOP. */
export const NO_FOLLOW = constants.O_NOFOLLOW;

/** A file's identity: the same device and inode are the same file, whatever its name. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** Opens `file` (an entry name from a FolderHandle) without following a symlink there: a symlink rejects with ELOOP. */
export async function openNoFollow(file: string, flags: number, mode = FILE_MODE): Promise<FileHandle> {
  return open(file, flags | NO_FOLLOW, mode);
}

/**
 * Streams `body` into the open `handle` from `position` (batched, see batched-writer.ts), optionally fsyncs, and closes
 * it.
 */
export async function writeToHandle(
  handle: FileHandle,
  position: number,
  body: AsyncIterable<Uint8Array>,
  options: { sync: boolean },
): Promise<{ written: number; identity: FileIdentity }> {
  try {
    const written = await writeBatched(handle, position, body);
    if (options.sync) await handle.sync();
    const { dev, ino } = await handle.stat();
    return { written, identity: { dev, ino } };
  } finally {
    await handle.close();
  }
}

/**
 * Cuts a staged file to the committed size (a legacy chunk re-sent shorter leaves bytes past it),
 * fsyncs it and returns its identity; the file is opened without following a symlink.
 */
export async function cutAndSync(file: string, size: number): Promise<FileIdentity> {
  const handle = await openNoFollow(file, constants.O_RDWR);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new UploadError('INTERNAL', 'the staged data is not a regular file');
    if (info.size > size) await handle.truncate(size);
    await handle.sync();
    return { dev: info.dev, ino: info.ino };
  } finally {
    await handle.close();
  }
}

/** lstat that resolves undefined for a missing entry (never follows a symlink). */
export async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

const READ_PIECE = 1024 * 1024;

/**
 * Reads `length` bytes of an open file from `offset`, in pieces of at most 1 MiB, and closes it; a file that ends early
 * is an error.
 */
export async function* readHandle(
  handle: FileHandle,
  offset: number,
  length: number,
  what: string,
): AsyncIterable<Buffer> {
  try {
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_PIECE, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new UploadError('INTERNAL', `${what} ended at byte ${position}, before ${end}`);
      position += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
