import type { RequestHandler } from 'express';
import { requireObject } from '../../http/fields.js';
import { callerOf } from '../../http/auth.js';
import { finalizeLegacySession } from '../../uploads/finalize-legacy-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { legacySessionOf } from './legacy-session.js';

/** POST /upload/finalize (legacy API). */
export function legacyFinalizeRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const body = requireObject(req.body);
    const uploadId = body.upload_id;
    const runtime = legacySessionOf(context, callerOf(res).uploader, typeof uploadId === 'string' ? uploadId : uploadId === undefined || uploadId === null ? undefined : String(uploadId));
    res.json(await finalizeLegacySession(context, runtime, body));
  };
}
