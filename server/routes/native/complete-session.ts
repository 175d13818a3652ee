import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { hexDigest, requiredString, requireObject } from '../../http/fields.js';
import { completeNativeSession } from '../../uploads/native-completion.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /v1/sessions/:id/complete `{sha256}`: verify the whole file's SHA-256 and make it visible. */
export function completeSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = await context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    const sha256 = hexDigest('sha256', requiredString(requireObject(req.body), 'sha256'), 64);
    res.json(await completeNativeSession(context, runtime, sha256));
  };
}
