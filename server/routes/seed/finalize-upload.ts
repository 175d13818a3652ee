import type { RequestHandler } from 'express';
import { requireObject } from '../../http/fields.js';
import { callerOf } from '../../http/auth.js';
import { finalizeSeedSession } from '../../uploads/finalize-seed-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { seedSessionOf } from './seed-session.js';

/** POST /upload/finalize (seed API). */
export function seedFinalizeRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const body = requireObject(req.body);
    const uploadId = body.upload_id;
    const runtime = seedSessionOf(context, callerOf(res).uploader, typeof uploadId === 'string' ? uploadId : uploadId === undefined || uploadId === null ? undefined : String(uploadId));
    res.json(await finalizeSeedSession(context, runtime, body));
  };
}
