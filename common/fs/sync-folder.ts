import { closeSync, constants, fsyncSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Opening only to fsync: read-only is enough, and a link planted at the name is never followed. */
export const SYNC_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * fsync of a folder: makes a create, unlink or rename in it survive a power loss (fsyncing the
 * file alone does not make its name durable). A folder that is itself gone has nothing left to
 * make durable.
 */
export function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, SYNC_FLAGS);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsync of a file by name, opened anew (so a file another program re-created is the one synced).
 * fsync is allowed on a read-only descriptor and flushes the file, not the descriptor.
 */
export async function syncFile(file: string): Promise<void> {
  const handle = await open(file, SYNC_FLAGS);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
