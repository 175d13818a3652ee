import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import type { UploadContext } from './upload-context.js';

/**
 * Refuses an upload of `size` bytes with FILE_TOO_LARGE (413) or INSUFFICIENT_STORAGE (507); an
 * admitted one is counted against the free space.
 */
export async function checkSizeAndSpace(context: UploadContext, size: number, field: string): Promise<void> {
  const { maxFileSize, diskReserve } = context.config;
  if (size > maxFileSize) {
    throw new UploadError(
      'FILE_TOO_LARGE',
      `${field} ${size} is over the maximum file size of ${maxFileSize} bytes (${formatSize(maxFileSize)})`,
    );
  }
  const free = await context.freeSpace.available();
  if (free < size + diskReserve) {
    throw new UploadError(
      'INSUFFICIENT_STORAGE',
      `Not enough disk space on the server for ${formatSize(size)}: ` +
        `${formatSize(Math.max(0, free))} free, ${formatSize(diskReserve)} kept in reserve`,
    );
  }
  context.freeSpace.admit(size);
}
