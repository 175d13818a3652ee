import { UploadError, isUploadError } from '../../../common/errors/upload-error.js';
import type { SessionRuntime } from '../../runtime/session-runtime.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/**
 * The legacy session named by an `upload_id` field. The legacy API answers 400 for an unknown
 * id on chunk and finalize (it is an invalid field there), 404 only on status.
 */
export async function legacySessionOf(
  context: UploadContext,
  uploader: string,
  uploadId: string | undefined,
): Promise<SessionRuntime> {
  if (uploadId === undefined || uploadId === '') throw new UploadError('INVALID_FIELD', 'upload_id is required');
  try {
    return await context.runtimes.get(uploadId, uploader, 'legacy');
  } catch (error) {
    if (isUploadError(error, 'SESSION_NOT_FOUND')) {
      throw new UploadError(
        'INVALID_FIELD',
        `upload_id ${JSON.stringify(uploadId.slice(0, 100))} is ` +
          `not a known upload (init it first; it may have expired)`,
      );
    }
    throw error;
  }
}
