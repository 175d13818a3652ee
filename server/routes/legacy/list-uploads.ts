import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { listStoredFiles } from '../../uploads/stored-files.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/**
 * GET /uploads: the caller's completed files (both APIs), newest first, with paths relative to
 * the storage root. Requires a token (see requireToken); never shows other uploaders' files.
 */
export function listUploadsRoute(context: UploadContext): RequestHandler {
  return async (_req, res) => {
    res.json(await listStoredFiles(context, callerOf(res).uploader));
  };
}
