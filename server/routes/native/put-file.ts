import type { RequestHandler } from 'express';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import { uploadBodyOf } from '../../http/request-body.js';
import { readWholeFileHeaders } from '../../http/whole-file-headers.js';
import { receiveWholeFile } from '../../uploads/receive-whole-file.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { filePathOf } from './file-path.js';

/** PUT /v1/files/<path>: a whole small file in one request (201 stored, 200 already stored). */
export function putFileRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const uploader = callerOf(res).uploader;
    const path = normaliseRelativePath(filePathOf(req));
    const h = readWholeFileHeaders(req);
    const body = uploadBodyOf(req, h.encoding);
    const answer = await receiveWholeFile(context, {
      uploader,
      path,
      length: h.length,
      gzip: h.encoding === 'gzip',
      sha256: h.sha256,
      metadata: h.metadata,
      replace: h.replace,
      body,
    });
    res.status(answer.status).json(answer.body);
  };
}
