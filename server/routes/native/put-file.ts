import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { receiveWholeFile } from '../../uploads/receive-whole-file.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** PUT /v1/files/<path>: a whole small file in one request (201 stored, 200 already stored). */
export function putFileRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const segments = (req.params as { path?: string[] | string }).path;
    const answer = await receiveWholeFile(context, callerOf(res).uploader, Array.isArray(segments) ? segments.join('/') : String(segments ?? ''), req);
    res.status(answer.status).json(answer.body);
  };
}
