import { UploadError } from '../../common/errors/upload-error.js';
import { isFingerprint } from '../../common/protocol/fingerprint.js';
import {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_COUNT,
  MAX_CHUNK_SIZE,
  MAX_METADATA_BYTES,
  MIN_CHUNK_SIZE,
  type CreateSessionResponse,
} from '../../common/protocol/native-protocol.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { hexDigest, optionalBoolean, optionalInteger, optionalObject, optionalString, preview, requiredInteger, requiredString, requireObject } from '../http/fields.js';
import { cancelSession } from './cancel-session.js';
import { pathLockKey } from './commit-file.js';
import { checkSizeAndSpace } from './disk-space.js';
import { findStoredCopy } from './stored-copy.js';
import { completedFileView, openSessionView } from './session-views.js';
import { openSession } from './open-session.js';
import type { UploadContext } from './upload-context.js';

export interface CreateSessionAnswer {
  status: 200 | 201;
  body: CreateSessionResponse;
}

/**
 * POST /v1/sessions: resumes the open session for the same file (uploader, path, size,
 * fingerprint), answers "complete" when the file is already stored, or creates a session.
 * An open session for the same path with different content is superseded (cancelled): the
 * client's file changed.
 */
export async function createNativeSession(context: UploadContext, uploader: string, input: unknown): Promise<CreateSessionAnswer> {
  const body = requireObject(input);
  const relativePath = normaliseRelativePath(requiredString(body, 'path'));
  const size = requiredInteger(body, 'size');
  const fingerprint = requiredString(body, 'fingerprint');
  if (!isFingerprint(fingerprint)) throw new UploadError('INVALID_FIELD', `fingerprint must be "fp1:" and 64 lowercase hex digits, not ${preview(fingerprint)}`);
  const chunkSize = optionalInteger(body, 'chunkSize', MIN_CHUNK_SIZE, MAX_CHUNK_SIZE) ?? DEFAULT_CHUNK_SIZE;
  const shaText = optionalString(body, 'sha256');
  const sha256 = shaText === undefined ? undefined : hexDigest('sha256', shaText, 64);
  const metadata = optionalObject(body, 'metadata', MAX_METADATA_BYTES);
  const replace = optionalBoolean(body, 'replace') ?? false;
  const compress = optionalBoolean(body, 'compress') ?? false;
  if (size > context.config.maxFileSize) await checkSizeAndSpace(context, size, 'size');
  const chunkCount = Math.max(1, Math.ceil(size / chunkSize));
  if (chunkCount > MAX_CHUNK_COUNT) {
    throw new UploadError('INVALID_FIELD', `chunkSize ${chunkSize} makes ${chunkCount} chunks; at most ${MAX_CHUNK_COUNT} are allowed (use at least ${Math.ceil(size / MAX_CHUNK_COUNT)} bytes)`);
  }

  return context.pathLocks.run(pathLockKey(uploader, relativePath), () =>
    createOrResume(context, uploader, { relativePath, size, fingerprint, chunkSize, chunkCount, sha256, metadata, replace, compress }),
  );
}

interface CreateFields {
  relativePath: string;
  size: number;
  fingerprint: string;
  chunkSize: number;
  chunkCount: number;
  sha256: string | undefined;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
  compress: boolean;
}

async function createOrResume(context: UploadContext, uploader: string, fields: CreateFields): Promise<CreateSessionAnswer> {
  const { relativePath, size, fingerprint, chunkSize, chunkCount, sha256, metadata, replace, compress } = fields;
  const stored = await findStoredCopy(context, uploader, relativePath);
  if (stored.record && stored.diskSize === stored.record.size && stored.record.size === size && stored.record.fingerprint === fingerprint && (sha256 === undefined || sha256 === stored.record.sha256)) {
    return { status: 200, body: completedFileView(stored.record) };
  }

  const now = Date.now();
  for (const open of context.store.openSessionsFor(uploader, relativePath)) {
    const runtime = context.runtimes.find(open.id)!;
    if (open.size === size && open.fingerprint === fingerprint) {
      if (runtime.record.state === 'completing') throw new UploadError('SESSION_BUSY', `The session for ${relativePath} is being completed; ask again in a moment`);
      runtime.record.replace = replace;
      runtime.record.expiresAt = now + context.config.sessionExpiry * 1000;
      context.store.resumeSession(open.id, replace, now, runtime.record.expiresAt);
      return { status: 200, body: openSessionView(runtime, true) };
    }
    if (runtime.record.state === 'completing') throw new UploadError('SESSION_BUSY', `An earlier session for ${relativePath} is being completed; ask again in a moment`);
    context.log.info({ event: 'session_superseded', sessionId: open.id, uploader, path: relativePath }, `Session ${open.id} for ${relativePath} superseded by a changed file`);
    await cancelSession(context, runtime);
  }

  if (stored.exists && !replace) {
    throw new UploadError('FILE_EXISTS', `A different file is already stored at ${relativePath}; send "replace": true to replace it`);
  }
  await checkSizeAndSpace(context, size, 'size');

  const runtime = await openSession(context, {
    api: 'native',
    uploader,
    path: relativePath,
    size,
    fingerprint,
    chunkSize,
    chunkCount,
    sha256Hint: sha256 ?? null,
    md5Expected: null,
    metadata: metadata ?? null,
    replace,
    compressionRequested: compress,
  });
  return { status: 201, body: openSessionView(runtime, false) };
}
