import { constants, existsSync, type Stats } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../errors/upload-error.js';

/**
 * Reading local files without following a symbolic link anywhere in their path, for a program
 * that must read only files really inside a folder it was given (the agent's watch root, a folder
 * named to `upload`), whatever a local user plants there and whenever: a link to a file or to a
 * folder, a folder renamed into a link, a link swapped in between a check and the open.
 *
 * The rule is simple to state: a path handed to `openNoFollow` must be the real path (no
 * symbolic link in any component), and the file opened must be a regular file that is, at the
 * moment it is opened, at exactly that path. The caller resolves what a person named once
 * (`realpath` of a watch root or of a file named on the command line) and builds every other path
 * from names it read in folders; this module makes sure no link swapped in later is followed.
 */

/**
 * O_NOFOLLOW: the last component must not be a link (ELOOP). O_NONBLOCK: a FIFO planted under a
 * file's name must not block a thread in open(2) (it is then refused as not a regular file; on a
 * regular file the flag changes nothing).
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Linux shows the path of every open descriptor in /proc/self/fd: the kernel's own, checked in one step. */
const PROC_FD = '/proc/self/fd';
let procFdUsable: boolean | undefined;

/** An opened file: read only through `handle`; `stats` is its fstat at open. */
export interface OpenedFile {
  handle: FileHandle;
  stats: Stats;
}

/**
 * Opens `filePath` (absolute, with no symbolic link in any component) for reading, and checks
 * through the opened descriptor that it is a regular file that is now at exactly `filePath`:
 * on Linux, the kernel's path of the descriptor (/proc/self/fd/N) must be `filePath`, which
 * fails when any folder on the way was a link while the file was opened; elsewhere, `filePath`
 * must have no link (realpath) and hold the same file (device and inode) as the descriptor.
 *
 * Errors: UNSAFE_LOCAL_PATH (a link in the path, or not a regular file), LOCAL_FILE_NOT_FOUND,
 * FILE_UNREADABLE.
 */
export async function openNoFollow(filePath: string): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await open(filePath, OPEN_FLAGS);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP')
      throw unsafe(filePath, 'it is a symbolic link (links are never followed)', error);
    throw localFileError(filePath, error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw unsafe(filePath, `it is ${kindOf(stats)}, not a regular file`);
    await assertOpenedAt(handle, filePath, stats);
    return { handle, stats };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw localFileError(filePath, error);
  }
}

/** What `lstatBelow` found at a path. */
export type PathVerdict =
  | { kind: 'file'; stats: Stats }
  | { kind: 'missing' }
  /** A component at or below the root is a symbolic link (`at`: which one), or the file is not a regular file. */
  | { kind: 'unsafe'; reason: string; at: string };

/**
 * lstat of every component of `filePath` below `root` (both absolute; `root` is the real path
 * the caller resolved once): each folder must be a folder and not a link, and the file itself a
 * regular file and not a link. A judgement, not a guarantee (the path can change right after):
 * the guarantee is `openNoFollow`'s, when the file is read.
 */
export async function lstatBelow(
  root: string,
  filePath: string,
  /** Folders already found to be real folders in this pass (a cache the caller drops after the pass). */
  realFolders?: Set<string>,
): Promise<PathVerdict> {
  const relative = path.relative(root, filePath);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative))
    return { kind: 'unsafe', reason: `${filePath} is not inside ${root}`, at: filePath };
  const segments = relative.split(path.sep);
  let current = root;
  for (const [index, segment] of segments.entries()) {
    current = path.join(current, segment);
    const last = index === segments.length - 1;
    if (!last && realFolders?.has(current)) continue;
    let stats: Stats;
    try {
      stats = await lstat(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
      throw localFileError(current, error);
    }
    if (stats.isSymbolicLink())
      return {
        kind: 'unsafe',
        reason: `${last ? 'a symbolic link' : `its folder ${current} is a symbolic link`} (links are never followed)`,
        at: current,
      };
    if (last) {
      if (!stats.isFile()) return { kind: 'unsafe', reason: `${kindOf(stats)}, not a regular file`, at: current };
      return { kind: 'file', stats };
    }
    if (!stats.isDirectory()) return { kind: 'missing' };
    realFolders?.add(current);
  }
  return { kind: 'missing' };
}

/** A name for what a non-regular file is, for messages. */
export function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

async function assertOpenedAt(handle: FileHandle, filePath: string, stats: Stats): Promise<void> {
  procFdUsable ??= existsSync(`${PROC_FD}/0`);
  if (procFdUsable) {
    let where: string;
    try {
      where = await readlink(`${PROC_FD}/${handle.fd}`);
    } catch (error) {
      throw localFileError(filePath, error);
    }
    if (where === filePath) return;
    if (where === `${filePath} (deleted)`)
      throw new UploadError('LOCAL_FILE_NOT_FOUND', `${filePath} does not exist (any more)`);
    throw unsafe(filePath, `it was reached through a symbolic link in its path (it is ${where})`);
  }
  // No /proc: the path must be link-free now and hold the very file that was opened.
  let real: string;
  let now: Stats;
  try {
    real = await realpath(filePath);
    now = await lstat(filePath);
  } catch (error) {
    throw localFileError(filePath, error);
  }
  if (real !== filePath) throw unsafe(filePath, `a folder in its path is a symbolic link (it resolves to ${real})`);
  if (now.dev !== stats.dev || now.ino !== stats.ino)
    throw unsafe(filePath, 'the file at this path changed while it was opened (a link swapped in?)');
}

function unsafe(filePath: string, why: string, cause?: unknown): UploadError {
  return new UploadError(
    'UNSAFE_LOCAL_PATH',
    `${filePath} is not read: ${why}. Only regular files reached without a symbolic link are uploaded`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Maps a file system error to LOCAL_FILE_NOT_FOUND / FILE_UNREADABLE naming the file; an
 * UploadError passes through.
 */
export function localFileError(filePath: string, error: unknown): UploadError {
  if (error instanceof UploadError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new UploadError('LOCAL_FILE_NOT_FOUND', `${filePath} does not exist (any more)`, { cause: error });
  }
  return new UploadError('FILE_UNREADABLE', `${filePath} cannot be read: ${(error as Error).message}`, {
    cause: error,
  });
}
