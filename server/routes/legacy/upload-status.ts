import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { legacyStatusView } from '../../uploads/legacy-views.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** GET /upload/status/:upload_id (legacy API): 404 for an unknown id. */
export function legacyStatusRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = await context.runtimes.get(String(req.params.uploadId), callerOf(res).uploader, 'legacy');
    res.json(legacyStatusView(runtime));
  };
}
