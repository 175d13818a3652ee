import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { seedStatusView } from '../../uploads/seed-views.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** GET /upload/status/:upload_id (seed API): 404 for an unknown id. */
export function seedStatusRoute(context: UploadContext): RequestHandler {
  return (req, res) => {
    const runtime = context.runtimes.get(String(req.params.uploadId), callerOf(res).uploader, 'seed');
    res.json(seedStatusView(context, runtime));
  };
}
