import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { initSeedSession } from '../../uploads/init-seed-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /upload/init (seed API). */
export function seedInitRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    res.json(await initSeedSession(context, callerOf(res).uploader, req.body));
  };
}
