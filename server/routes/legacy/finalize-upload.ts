import type { RequestHandler } from 'express';
import { callerOf } from '../../http/auth.js';
import { hexDigest, optionalString, requireObject } from '../../http/fields.js';
import { finalizeLegacySession } from '../../uploads/legacy-completion.js';
import type { UploadContext } from '../../uploads/upload-context.js';
import { legacySessionOf } from './legacy-session.js';

/** POST /upload/finalize (legacy API): `{upload_id, checksum?}`. */
export function legacyFinalizeRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const body = requireObject(req.body);
    const uploadId = body.upload_id;
    const runtime = await legacySessionOf(
      context,
      callerOf(res).uploader,
      typeof uploadId === 'string'
        ? uploadId
        : uploadId === undefined || uploadId === null
          ? undefined
          : String(uploadId),
    );
    const given = optionalString(body, 'checksum');
    const md5 = given === undefined || given === '' ? undefined : hexDigest('checksum (MD5)', given, 32);
    res.json(await finalizeLegacySession(context, runtime, md5));
  };
}
