import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { initLegacySession } from '../../uploads/init-legacy-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /upload/init (legacy API). */
export function legacyInitRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    res.json(await initLegacySession(context, callerOf(res).uploader, req.body));
  };
}
