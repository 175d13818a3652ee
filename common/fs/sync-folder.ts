import { closeSync, fsyncSync, openSync } from 'node:fs';

/**
 * fsync of a folder: makes a create, unlink or rename in it survive a power loss (fsyncing the
 * file alone does not make its name durable). A folder that is itself gone has nothing left to
 * make durable.
 */
export function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
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
