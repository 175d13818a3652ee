import { UploadError, type UploadErrorCode } from '../../common/errors/upload-error.js';

/** `0-3, 7, 9-12`, cut after `limit` ranges with a count of the rest. */
export function formatIndexes(indexes: readonly number[], limit = 20): string {
  const ranges: string[] = [];
  let run: { first: number; last: number } | undefined;
  for (const index of indexes) {
    if (run && index === run.last + 1) {
      run.last = index;
      continue;
    }
    if (run) ranges.push(formatRun(run));
    run = { first: index, last: index };
  }
  if (run) ranges.push(formatRun(run));
  if (ranges.length <= limit) return ranges.join(', ');
  return `${ranges.slice(0, limit).join(', ')}, … (${indexes.length} in all)`;
}

function formatRun({ first, last }: { first: number; last: number }): string {
  return first === last ? `${first}` : `${first}-${last}`;
}

/** An error whose answer carries `missing` (CHUNKS_MISSING, FILE_CHECKSUM_MISMATCH). */
export function missingError(code: UploadErrorCode, message: string, missing: readonly number[]): UploadError {
  return new UploadError(code, `${message}: ${missing.length === 1 ? 'chunk' : 'chunks'} ${formatIndexes(missing)}`, {
    details: { missing: [...missing] },
  });
}
