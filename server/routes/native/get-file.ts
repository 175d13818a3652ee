import type { RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import { findStoredCopy } from '../../uploads/stored-copy.js';
import { completedFileView } from '../../uploads/session-views.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** GET /v1/files/<path>: a file this uploader has stored, without creating a session. */
export function getFileRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const segments = (req.params as { path?: string[] | string }).path;
    const relativePath = normaliseRelativePath(Array.isArray(segments) ? segments.join('/') : String(segments ?? ''));
    const uploader = callerOf(res).uploader;
    const stored = await findStoredCopy(context, uploader, relativePath);
    if (!stored.record) throw new UploadError('FILE_NOT_FOUND', `No stored file ${relativePath} for this uploader`);
    res.json(completedFileView(stored.record));
  };
}
