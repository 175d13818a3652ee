import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { completeNativeSession } from '../../uploads/complete-native-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /v1/sessions/:id/complete: verify the whole file's SHA-256 and make it visible. */
export function completeSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    res.json(await completeNativeSession(context, runtime, req.body));
  };
}
