import { open } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';

const READ_PIECE = 1024 * 1024;

/** Reads `length` bytes of `file` from `offset`, in pieces of at most 1 MiB; a file that ends early is an error. */
export async function* readRange(file: string, offset: number, length: number): AsyncIterable<Buffer> {
  const handle = await open(file, 'r');
  try {
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_PIECE, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0)
        throw new UploadError('INTERNAL', `${path.basename(file)} ended at byte ${position}, before ${end}`);
      position += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
