import { MAX_CHUNK_COUNT, MAX_METADATA_BYTES } from '../../common/protocol/native-protocol.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { hexDigest, optionalBoolean, optionalObject, optionalString, requiredInteger, requiredString, requireObject } from '../http/fields.js';
import { checkSizeAndSpace } from './disk-space.js';
import { openSession } from './open-session.js';
import type { UploadContext } from './upload-context.js';

export interface LegacyInitAnswer {
  success: true;
  upload_id: string;
  message: string;
  compression_enabled: boolean;
}

/**
 * POST /upload/init (the legacy API): `{filename, filesize, chunks, metadata?, checksum?,
 * compression?}`. Each init is a new session, as in the Python dashboard. `filename` may contain folders and
 * follows the native path rules (no `..`, no absolute paths, ...).
 */
export async function initLegacySession(context: UploadContext, uploader: string, input: unknown): Promise<LegacyInitAnswer> {
  const body = requireObject(input);
  const filename = normaliseRelativePath(requiredString(body, 'filename'), 'filename');
  const size = requiredInteger(body, 'filesize');
  const chunkCount = requiredInteger(body, 'chunks', 1, MAX_CHUNK_COUNT);
  const metadata = optionalObject(body, 'metadata', MAX_METADATA_BYTES);
  const checksum = optionalString(body, 'checksum');
  const md5 = checksum === undefined || checksum === '' ? undefined : hexDigest('checksum (MD5)', checksum, 32);
  const compression = optionalBoolean(body, 'compression') ?? false;
  await checkSizeAndSpace(context, size, 'filesize');
  // Refuses now, not at finalize, a name that would leave the root through a symlink or whose folder is a file.
  await context.storage.completedSize(uploader, filename);

  const runtime = await openSession(context, {
    api: 'legacy',
    uploader,
    path: filename,
    size,
    fingerprint: null,
    chunkSize: null,
    chunkCount,
    sha256Hint: null,
    md5Expected: md5 ?? null,
    metadata: metadata ?? null,
    replace: false,
    compressionRequested: compression,
  });
  return { success: true, upload_id: runtime.record.id, message: `Upload initialized: ${filename}`, compression_enabled: runtime.record.compress };
}
