import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { cancelSession } from '../../uploads/cancel-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** DELETE /v1/sessions/:id: 204, the session and its data are gone. */
export function cancelSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = await context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    await cancelSession(context, runtime);
    res.status(204).end();
  };
}
