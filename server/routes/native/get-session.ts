import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { statusView } from '../../uploads/session-views.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** GET /v1/sessions/:id: the session with the chunks held, or its completed file. */
export function getSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const runtime = await context.runtimes.get(String(req.params.id), callerOf(res).uploader, 'native');
    res.json(statusView(runtime));
  };
}
