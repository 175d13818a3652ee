import type { RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { isFingerprint } from '../../../common/protocol/fingerprint.js';
import {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  MAX_METADATA_BYTES,
  MIN_CHUNK_SIZE,
} from '../../../common/protocol/native-protocol.js';
import { normaliseRelativePath } from '../../../common/protocol/relative-path.js';
import { callerOf } from '../../http/auth.js';
import {
  hexDigest,
  optionalBoolean,
  optionalInteger,
  optionalObject,
  optionalString,
  preview,
  requiredInteger,
  requiredString,
  requireObject,
} from '../../http/fields.js';
import { createNativeSession, type CreateNativeSessionInput } from '../../uploads/create-native-session.js';
import type { UploadContext } from '../../uploads/upload-context.js';

/** POST /v1/sessions: create or resume (201 new, 200 resumed or already complete). */
export function createSessionRoute(context: UploadContext): RequestHandler {
  return async (req, res) => {
    const answer = await createNativeSession(context, parseCreate(callerOf(res).uploader, req.body));
    res.status(answer.status).json(answer.body);
  };
}

/** The JSON body, each field checked in turn (the first problem is the one reported). */
function parseCreate(uploader: string, input: unknown): CreateNativeSessionInput {
  const body = requireObject(input);
  const path = normaliseRelativePath(requiredString(body, 'path'));
  const size = requiredInteger(body, 'size');
  const fingerprint = requiredString(body, 'fingerprint');
  if (!isFingerprint(fingerprint))
    throw new UploadError(
      'INVALID_FIELD',
      `fingerprint must be "fp1:" and 64 lowercase hex digits, not ${preview(fingerprint)}`,
    );
  const chunkSize = optionalInteger(body, 'chunkSize', MIN_CHUNK_SIZE, MAX_CHUNK_SIZE) ?? DEFAULT_CHUNK_SIZE;
  const shaText = optionalString(body, 'sha256');
  const sha256 = shaText === undefined ? undefined : hexDigest('sha256', shaText, 64);
  const metadata = optionalObject(body, 'metadata', MAX_METADATA_BYTES);
  const replace = optionalBoolean(body, 'replace') ?? false;
  const compress = optionalBoolean(body, 'compress') ?? false;
  return { uploader, path, size, fingerprint, chunkSize, sha256, metadata, replace, compress };
}
