import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { legacyFileView } from '../../uploads/legacy-views.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** The most entries one listing returns, newest first. */
export const LIST_LIMIT = 1000;

/**
 * GET /uploads: the caller's completed files (both APIs), newest first, with paths relative to
 * the storage root. Requires a token (see requireToken); never shows other uploaders' files.
 */
export function listUploadsRoute(context: UploadContext): RequestHandler {
  return (_req, res) => {
    const uploads = context.store.filesOf(callerOf(res).uploader, LIST_LIMIT).map((file) => legacyFileView(context, file));
    res.json({ success: true, count: uploads.length, uploads });
  };
}
