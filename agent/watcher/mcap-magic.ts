import { open, type FileHandle } from 'node:fs/promises';

/** MCAP files begin and end with these 8 bytes; the trailing copy is written last, on close. */
export const MCAP_MAGIC = Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);

/**
 * True when the file ends with the MCAP magic bytes, i.e. the writer finished it. A file
 * without them is still being written, or was cut short by a crash. Reads 8 bytes.
 */
export async function endsWithMcapMagic(filePath: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(filePath, 'r');
  } catch {
    return false;
  }
  try {
    const { size } = await handle.stat();
    if (size < MCAP_MAGIC.length * 2) return false;
    const tail = Buffer.alloc(MCAP_MAGIC.length);
    const { bytesRead } = await handle.read(tail, 0, tail.length, size - tail.length);
    return bytesRead === tail.length && tail.equals(MCAP_MAGIC);
  } finally {
    await handle.close();
  }
}
