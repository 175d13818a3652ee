import type { FileRecord } from '../sessions/session-record.js';
import { adoptStoredFile } from './adopt-stored-file.js';
import type { UploadContext } from './upload-context.js';

export interface StoredCopy {
  /** The index entry, when it describes the stored file (adopted first, when asked to). */
  record: FileRecord | undefined;
  /** Size of the stored file, or undefined when there is none. */
  diskSize: number | undefined;
  /** True when something is stored at the path (indexed or not). */
  exists: boolean;
}

/**
 * What is stored at `completed/<uploader>/<path>`, from the index and the storage. With `adopt`
 * (the caller holds the path's lock), a stored file the index does not describe (no entry, or
 * an entry of another size) is hashed and indexed first (adoptStoredFile), so it is compared by
 * content like any other, never taken for "a different file" unseen.
 */
export async function findStoredCopy(
  context: UploadContext,
  uploader: string,
  relativePath: string,
  options: { adopt?: boolean } = {},
): Promise<StoredCopy> {
  let record = await context.store.getFile(uploader, relativePath);
  const diskSize = (await context.storage.stat({ uploader, path: relativePath }))?.size;
  if (diskSize === undefined) return { record: undefined, diskSize, exists: false };
  if (options.adopt && record?.size !== diskSize) {
    const previous = record;
    record = await adoptStoredFile(context, { uploader, path: relativePath }, diskSize, Date.now(), previous);
    context.log.warn(
      { event: 'index_adopted', uploader, path: relativePath, size: diskSize, sha256: record.sha256 },
      `${relativePath} of ${uploader} was stored but not in the index${previous ? ' as it is' : ''}; ` +
        `hashed and indexed it`,
    );
  }
  return { record: record?.size === diskSize ? record : undefined, diskSize, exists: true };
}
