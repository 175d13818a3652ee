import { UploadError } from '../../common/errors/upload-error.js';
import type { FileRecord } from '../sessions/session-record.js';
import { findStoredCopy } from './stored-copy.js';
import type { UploadContext } from './upload-context.js';

/** Bytes `[start, end]` of a file (both inclusive, as in HTTP's Content-Range). */
export interface ByteRange {
  start: number;
  end: number;
}

/** A stored file opened for reading: what it is, and its bytes (all, or one range). */
export interface StoredFileRead {
  record: FileRecord;
  /** The range read, or undefined for the whole file. */
  range: ByteRange | undefined;
  body: AsyncIterable<Buffer>;
}

/**
 * Reads a file `uploader` has stored, through the storage (local disk or object store), whole or
 * one byte range. FILE_NOT_FOUND when there is none. The range must lie inside the file (the
 * route answers 416 otherwise, before calling this).
 */
export async function readStoredFile(
  context: UploadContext,
  uploader: string,
  relativePath: string,
  range: (size: number) => ByteRange | undefined,
): Promise<StoredFileRead> {
  const stored = await findStoredCopy(context, uploader, relativePath);
  if (!stored.record) throw new UploadError('FILE_NOT_FOUND', `No stored file ${relativePath} for this uploader`);
  const file = { uploader, path: stored.record.path };
  const wanted = range(stored.record.size);
  const body = wanted
    ? context.storage.readRange(file, wanted.start, wanted.end - wanted.start + 1)
    : context.storage.read(file);
  return { record: stored.record, range: wanted, body };
}
