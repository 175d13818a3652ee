import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** fsync a file's data and metadata. */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * fsync a folder so that a rename or link into it survives power loss. Some file systems refuse
 * to fsync a folder (EINVAL, EISDIR); there is nothing more to do on those.
 */
export async function fsyncDir(folder: string): Promise<void> {
  let handle;
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
