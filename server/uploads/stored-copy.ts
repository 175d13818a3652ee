import type { FileRecord } from '../sessions/session-record.js';
import type { UploadContext } from './upload-context.js';

export interface StoredCopy {
  /** The index entry, when the file was stored by this server. */
  record: FileRecord | undefined;
  /** Size of the stored file, or undefined when there is none. */
  diskSize: number | undefined;
  /** True when something is stored at the path (indexed or not). */
  exists: boolean;
}

/** What is stored at `completed/<uploader>/<path>`, from the index and the storage. */
export async function findStoredCopy(
  context: UploadContext,
  uploader: string,
  relativePath: string,
): Promise<StoredCopy> {
  const record = await context.store.getFile(uploader, relativePath);
  const diskSize = (await context.storage.stat({ uploader, path: relativePath }))?.size;
  return { record: diskSize === undefined ? undefined : record, diskSize, exists: diskSize !== undefined };
}
