import { UploadError } from '../../common/errors/upload-error.js';
import type { CompletedFile } from '../../common/protocol/native-protocol.js';
import { pathLockKey } from './commit-file.js';
import { legacyFileView } from './legacy-views.js';
import { completedFileView } from './session-views.js';
import { findStoredCopy } from './stored-copy.js';
import type { UploadContext } from './upload-context.js';

/** The most entries one listing returns, newest first. */
export const LIST_LIMIT = 1000;

/**
 * A file this uploader has stored, without creating a session; FILE_NOT_FOUND when there is none.
 * A stored file the index does not describe is hashed and indexed first (under the path's lock).
 */
export async function storedFile(
  context: UploadContext,
  uploader: string,
  relativePath: string,
): Promise<CompletedFile> {
  let stored = await findStoredCopy(context, uploader, relativePath);
  if (stored.exists && !stored.record) {
    stored = await context.pathLocks.run(pathLockKey(uploader, relativePath), () =>
      findStoredCopy(context, uploader, relativePath, { adopt: true }),
    );
  }
  if (!stored.record) throw new UploadError('FILE_NOT_FOUND', `No stored file ${relativePath} for this uploader`);
  return completedFileView(stored.record);
}

/** GET /uploads: the uploader's stored files (both APIs), newest first, with keys relative to the storage root. */
export async function listStoredFiles(
  context: UploadContext,
  uploader: string,
): Promise<{ success: true; count: number; uploads: Record<string, unknown>[] }> {
  const uploads = (await context.store.filesOf(uploader, LIST_LIMIT)).map(legacyFileView);
  return { success: true, count: uploads.length, uploads };
}
