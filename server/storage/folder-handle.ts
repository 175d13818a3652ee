import { constants, statSync } from 'node:fs';
import { lstat, mkdir, open, readlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Opens a folder for reading its entries, never through a symlink. */
const FOLDER_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Mode of the folders the server creates: the group may read, others nothing (the umask may narrow it further). */
export const FOLDER_MODE = 0o750;

/**
 * Linux's `/proc/self/fd/<n>` names the very folder a descriptor holds (the kernel jumps to it
 * instead of resolving a path again), so `/proc/self/fd/<n>/<name>` works like the `*at()`
 * system calls Node does not offer: the entry `name` of that folder, wherever the folder is
 * now. Without /proc (other systems), entries are named by the folder's path, checked by
 * identity afterwards (see `isStillAt`).
 */
const PROC_FD = ((): boolean => {
  try {
    return statSync('/proc/self/fd').isDirectory();
  } catch {
    return false;
  }
})();

/** What `openChild` found where a folder was expected. */
export type NotAFolder = 'symlink' | 'file' | 'missing';

/**
 * A folder opened without following symlinks, whose entries are reached through its descriptor
 * rather than by a path resolved again: a folder on the way that a local process swaps for a
 * symlink between two steps is never followed. Each component is opened with O_NOFOLLOW |
 * O_DIRECTORY (a symlink gives ELOOP, a file ENOTDIR), and a missing one is created first
 * (mkdir never follows a symlink in the last place either). Close every handle.
 */
export class FolderHandle {
  readonly #handle: FileHandle;
  /** Where the folder was when it was opened: the path expected by `isStillAt`. */
  readonly absolute: string;
  #identity: { dev: number; ino: number } | undefined;

  private constructor(handle: FileHandle, absolute: string) {
    this.#handle = handle;
    this.absolute = absolute;
  }

  /** Opens `absolute` (a real path: its last component is not followed if it is a symlink). */
  static async open(absolute: string): Promise<FolderHandle> {
    return new FolderHandle(await open(absolute, FOLDER_FLAGS), absolute);
  }

  /** The name of entry `name` of this folder, for a system call: resolved through the descriptor, not the path. */
  entry(name: string): string {
    return PROC_FD ? `/proc/self/fd/${this.#handle.fd}/${name}` : path.join(this.absolute, name);
  }

  /**
   * Opens the sub-folder `name`, creating it (mode FOLDER_MODE) when `create` and it is missing.
   * Resolves with the handle and whether it was created, or with what stands there instead
   * ('symlink', 'file', or 'missing' when it may not be created).
   */
  async openChild(
    name: string,
    create: boolean,
  ): Promise<{ folder: FolderHandle; created: boolean } | { notAFolder: NotAFolder }> {
    const absolute = path.join(this.absolute, name);
    let created = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return { folder: new FolderHandle(await open(this.entry(name), FOLDER_FLAGS), absolute), created };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') return { notAFolder: 'symlink' };
        if (code === 'ENOTDIR') {
          // O_DIRECTORY refuses a symlink to a folder with ENOTDIR on some systems: tell them apart.
          const info = await lstat(this.entry(name)).catch(() => undefined);
          return { notAFolder: info?.isSymbolicLink() ? 'symlink' : 'file' };
        }
        if (code !== 'ENOENT' || !create || attempt > 3) {
          if (code === 'ENOENT') return { notAFolder: 'missing' };
          throw error;
        }
      }
      try {
        await mkdir(this.entry(name), FOLDER_MODE);
        created = true;
      } catch (error) {
        // Another request made it meanwhile (or planted something): open what is there.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  /**
   * True when the folder is still where it was opened (`absolute`): a local process may have
   * moved it, or a folder above it, since. With /proc the kernel reports the descriptor's current
   * path; without it, every component of `absolute` is compared with the descriptor's identity.
   */
  async isStillAt(): Promise<boolean> {
    if (PROC_FD) return (await readlink(`/proc/self/fd/${this.#handle.fd}`)) === this.absolute;
    const [info, held] = await Promise.all([lstat(this.absolute).catch(() => undefined), this.identity()]);
    return info !== undefined && !info.isSymbolicLink() && info.dev === held.dev && info.ino === held.ino;
  }

  /** The folder's device and inode. */
  async identity(): Promise<{ dev: number; ino: number }> {
    if (!this.#identity) {
      const { dev, ino } = await this.#handle.stat();
      this.#identity = { dev, ino };
    }
    return this.#identity;
  }

  /** fsync of the folder: its entries (a link, a rename, a new sub-folder) survive power loss. */
  async sync(): Promise<void> {
    try {
      await this.#handle.sync();
    } catch (error) {
      // Some file systems refuse to fsync a folder; there is nothing more to do on those.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw error;
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

/**
 * The folders from `root` down through `segments`, each opened from the one before (see
 * FolderHandle). Resolves with every handle opened (the root first, the deepest last; the caller
 * closes them all with `closeAll`) and the index of the first created one; or with the first
 * segment that is not a folder. The root handle is borrowed, not opened here.
 */
export async function openFolders(
  root: FolderHandle,
  segments: readonly string[],
  create: boolean,
): Promise<{ chain: FolderHandle[]; firstCreated: number | undefined } | { at: number; notAFolder: NotAFolder }> {
  const chain: FolderHandle[] = [root];
  let firstCreated: number | undefined;
  try {
    for (let i = 0; i < segments.length; i += 1) {
      const opened = await chain[chain.length - 1]!.openChild(segments[i]!, create);
      if ('notAFolder' in opened) {
        await closeAll(chain.slice(1));
        return { at: i, notAFolder: opened.notAFolder };
      }
      chain.push(opened.folder);
      if (opened.created) firstCreated ??= i;
    }
  } catch (error) {
    await closeAll(chain.slice(1));
    throw error;
  }
  return { chain, firstCreated };
}

/** Closes handles, ignoring errors (read-only folder descriptors: nothing can be lost). */
export async function closeAll(handles: readonly FolderHandle[]): Promise<void> {
  await Promise.all(handles.map((handle) => handle.close().catch(() => undefined)));
}
