import type { RequestHandler } from 'express';
import { MAX_CHUNK_COUNT, MAX_METADATA_BYTES } from '../../../common/protocol/native-protocol.js';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import {
  hexDigest,
  optionalBoolean,
  optionalObject,
  optionalString,
  requiredInteger,
  requiredString,
  requireObject,
} from '../../http/fields.js';
import { initLegacySession, type InitLegacySessionInput } from '../../uploads/init-legacy-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /upload/init (legacy API): `{filename, filesize, chunks, metadata?, checksum?, compression?}`. */
export function legacyInitRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    res.json(await initLegacySession(context, parseInit(callerOf(res).uploader, req.body)));
  };
}

function parseInit(uploader: string, input: unknown): InitLegacySessionInput {
  const body = requireObject(input);
  const filename = normaliseRelativePath(requiredString(body, 'filename'), 'filename');
  const size = requiredInteger(body, 'filesize');
  const chunkCount = requiredInteger(body, 'chunks', 1, MAX_CHUNK_COUNT);
  const metadata = optionalObject(body, 'metadata', MAX_METADATA_BYTES);
  const checksum = optionalString(body, 'checksum');
  const md5 = checksum === undefined || checksum === '' ? undefined : hexDigest('checksum (MD5)', checksum, 32);
  const compression = optionalBoolean(body, 'compression') ?? false;
  return { uploader, filename, size, chunkCount, metadata, md5, compression };
}
