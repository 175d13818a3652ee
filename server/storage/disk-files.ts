import { constants } from 'node:fs';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { writeBatched } from './batched-writer.js';

/**
 * Streams `body` into `file` from `position` (batched, see batched-writer.ts). The folder is
 * created on first use when the flags create the file (one call less per request otherwise).
 */
export async function writeFile(
  file: string,
  flags: number,
  position: number,
  body: AsyncIterable<Uint8Array>,
  options: { sync: boolean },
): Promise<number> {
  let handle: FileHandle;
  try {
    handle = await open(file, flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || (flags & constants.O_CREAT) === 0) throw error;
    await mkdir(path.dirname(file), { recursive: true });
    handle = await open(file, flags);
  }
  try {
    const written = await writeBatched(handle, position, body);
    if (options.sync) await handle.sync();
    return written;
  } finally {
    await handle.close();
  }
}

/** Cuts a staged file to the committed size (a legacy chunk re-sent shorter leaves bytes past it) and fsyncs it. */
export async function cutAndSync(file: string, size: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    if ((await handle.stat()).size > size) await handle.truncate(size);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function statOrUndefined(file: string): Promise<{ size: number } | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
