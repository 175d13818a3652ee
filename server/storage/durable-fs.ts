import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * fsync a folder so that a rename or link into it survives power loss. Some file systems refuse
 * to fsync a folder (EINVAL, EISDIR); there is nothing more to do on those.
 */
export async function fsyncDir(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * fsync of folders, shared by concurrent callers: a caller that made a change in a folder (a
 * link, a rename) waits for an fsync of it that started after its call, so its change is
 * durable; every caller that arrives while one fsync runs shares the next one. With two uploads
 * completing at once in one bag folder, that is one folder fsync instead of two.
 */
export class FolderSyncer {
  readonly #folders = new Map<string, { current: Promise<void>; next: Promise<void> | undefined }>();

  /** Resolves once an fsync of `folder` that started after this call has finished. */
  sync(folder: string): Promise<void> {
    const entry = this.#folders.get(folder);
    if (!entry) return this.#start(folder);
    // The running fsync may have started before the caller's change: wait for the next one.
    entry.next ??= entry.current.then(noop, noop).then(() => this.#start(folder));
    return entry.next;
  }

  #start(folder: string): Promise<void> {
    const entry: { current: Promise<void>; next: Promise<void> | undefined } = {
      current: Promise.resolve(),
      next: undefined,
    };
    entry.current = fsyncDir(folder).finally(() => {
      if (!entry.next && this.#folders.get(folder) === entry) this.#folders.delete(folder);
    });
    this.#folders.set(folder, entry);
    return entry.current;
  }
}

function noop(): void {}
