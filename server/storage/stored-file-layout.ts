import type { StoredFile } from './upload-storage.js';

/**
 * The keys of stored files under the storage root, the same for every backend (folders on the
 * local disk, object keys in a bucket). The legacy API reports them to clients (`file_path`,
 * `compressed_path`), so they never contain an absolute server path.
 */
export function completedKey(file: StoredFile): string {
  return ['completed', file.uploader, file.path].join('/');
}

/** The key of a stored file's gzip copy at rest. */
export function compressedKey(file: StoredFile): string {
  return ['compressed', file.uploader, `${file.path}${GZIP_SUFFIX}`].join('/');
}

/** What a gzip copy's name adds to its file's name. */
export const GZIP_SUFFIX = '.gz';
