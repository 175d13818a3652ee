import { type OpenedFile, openNoFollow } from '../../common/files/no-follow.js';

/** MCAP files begin and end with these 8 bytes; the trailing copy is written last, on close. */
export const MCAP_MAGIC = Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);

/**
 * True when the file ends with the MCAP magic bytes, i.e. the writer finished it. A file
 * without them is still being written, or was cut short by a crash. Reads 8 bytes, through a
 * descriptor opened without following a symbolic link (a link or a named pipe swapped in is
 * never read, and never blocks); false when the file cannot be opened that way.
 */
export async function endsWithMcapMagic(filePath: string): Promise<boolean> {
  let opened: OpenedFile;
  try {
    opened = await openNoFollow(filePath);
  } catch {
    return false;
  }
  const { handle, stats } = opened;
  try {
    if (stats.size < MCAP_MAGIC.length * 2) return false;
    const tail = Buffer.alloc(MCAP_MAGIC.length);
    const { bytesRead } = await handle.read(tail, 0, tail.length, stats.size - tail.length);
    return bytesRead === tail.length && tail.equals(MCAP_MAGIC);
  } finally {
    await handle.close();
  }
}
