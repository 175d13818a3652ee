import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { createNativeSession } from '../../uploads/create-native-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /v1/sessions: create or resume (201 new, 200 resumed or already complete). */
export function createSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const answer = await createNativeSession(context, callerOf(res).uploader, req.body);
    res.status(answer.status).json(answer.body);
  };
}
