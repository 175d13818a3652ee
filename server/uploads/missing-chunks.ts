import { UploadError, type UploadErrorCode } from '../../common/errors/upload-error.js';

/** `0-3, 7, 9-12`, cut after `limit` ranges with a count of the rest. */
export function formatIndexes(indexes: readonly number[], limit = 20): string {
  const ranges: string[] = [];
  let i = 0;
  while (i < indexes.length) {
    let j = i;
    while (j + 1 < indexes.length && indexes[j + 1] === indexes[j]! + 1) j += 1;
    ranges.push(i === j ? `${indexes[i]}` : `${indexes[i]}-${indexes[j]}`);
    i = j + 1;
  }
  if (ranges.length <= limit) return ranges.join(', ');
  return `${ranges.slice(0, limit).join(', ')}, … (${indexes.length} in all)`;
}

/** An error whose answer carries `missing` (CHUNKS_MISSING, FILE_CHECKSUM_MISMATCH). */
export function missingError(code: UploadErrorCode, message: string, missing: readonly number[]): UploadError {
  return new UploadError(code, `${message}: ${missing.length === 1 ? 'chunk' : 'chunks'} ${formatIndexes(missing)}`, {
    details: { missing: [...missing] },
  });
}
