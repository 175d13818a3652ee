import type { RequestHandler } from 'express';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import { storedFile } from '../../uploads/stored-files.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { filePathOf } from './file-path.js';

/** GET /v1/files/<path>: a file this uploader has stored, without creating a session. */
export function getFileRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    res.json(await storedFile(context, callerOf(res).uploader, normaliseRelativePath(filePathOf(req))));
  };
}
