import { UploadError } from '../../common/errors/upload-error.js';
import { MAX_CHUNK_COUNT, MAX_CHUNK_SIZE, type CreateSessionResponse } from '../../common/protocol/native-protocol.js';
import { endSession, sessionEventOf } from './cancel-session.js';
import { pathLockKey } from './commit-file.js';
import { checkSizeAndSpace } from './disk-space.js';
import { openSession } from './open-session.js';
import { checkOpenSessionCap } from './open-session-cap.js';
import { completedFileView, openSessionView } from './session-views.js';
import { findStoredCopy } from './stored-copy.js';
import type { UploadContext } from './upload-context.js';

/** POST /v1/sessions, its fields checked (path normalised, fingerprint and digests well-formed). */
export interface CreateNativeSessionInput {
  uploader: string;
  path: string;
  size: number;
  fingerprint: string;
  chunkSize: number;
  sha256: string | undefined;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
  compress: boolean;
}

export interface CreateSessionAnswer {
  status: 200 | 201;
  body: CreateSessionResponse;
}

/**
 * Create or resume: resumes the open session for the same file (uploader, path, size,
 * fingerprint), answers "complete" when the file is already stored, or creates a session.
 * An open session for the same path with different content is superseded (cancelled): the
 * client's file changed.
 */
export async function createNativeSession(
  context: UploadContext,
  input: CreateNativeSessionInput,
): Promise<CreateSessionAnswer> {
  const { size } = input;
  if (size > context.config.maxFileSize) await checkSizeAndSpace(context, size, 'size');
  const chunkSize = chunkSizeFor(context, size, input.chunkSize);
  const chunkCount = Math.max(1, Math.ceil(size / chunkSize));
  if (chunkCount > MAX_CHUNK_COUNT) {
    throw new UploadError(
      'INVALID_FIELD',
      `chunkSize ${chunkSize} makes ${chunkCount} chunks; at most ${MAX_CHUNK_COUNT} ` +
        `are allowed (use at least ${Math.ceil(size / MAX_CHUNK_COUNT)} bytes)`,
    );
  }
  return context.pathLocks.run(pathLockKey(input.uploader, input.path), () =>
    createOrResume(context, { ...input, chunkSize }, chunkCount),
  );
}

/**
 * The chunk size of a new session: the client's, raised where the storage needs larger chunks
 * (S3: 5 MiB, S3's smallest multipart part, and at most 10,000 chunks). The answer's `chunkSize`
 * is the one in force, and clients send chunks of that size.
 */
function chunkSizeFor(context: UploadContext, size: number, requested: number): number {
  const rules = context.storage.chunkedStaging;
  if (!rules) return requested;
  const chunkSize = Math.max(requested, rules.minChunkSize, Math.ceil(size / rules.maxChunks));
  if (chunkSize > MAX_CHUNK_SIZE)
    throw new UploadError(
      'FILE_TOO_LARGE',
      `A file of ${size} bytes needs chunks over ${MAX_CHUNK_SIZE} bytes on this storage ` +
        `(at most ${rules.maxChunks} chunks)`,
    );
  return chunkSize;
}

async function createOrResume(
  context: UploadContext,
  input: CreateNativeSessionInput,
  chunkCount: number,
): Promise<CreateSessionAnswer> {
  const { uploader, path: relativePath, size, fingerprint, sha256, replace } = input;
  // A stored file the index does not know is hashed now: the same content is "complete", never 409.
  const stored = await findStoredCopy(context, uploader, relativePath, { adopt: true });
  if (
    stored.record &&
    stored.diskSize === stored.record.size &&
    stored.record.size === size &&
    stored.record.fingerprint === fingerprint &&
    (sha256 === undefined || sha256 === stored.record.sha256)
  ) {
    return { status: 200, body: completedFileView(stored.record) };
  }

  const now = Date.now();
  for (const open of await context.store.openSessionsFor(uploader, relativePath)) {
    const runtime = await context.runtimes.find(open.id);
    if (!runtime) continue; // ended (cancelled, expired) since the listing: nothing to resume or supersede
    if (open.size === size && open.fingerprint === fingerprint) {
      if (runtime.record.state === 'completing')
        throw new UploadError(
          'SESSION_BUSY',
          `The session for ${relativePath} is being completed; ask again in a moment`,
        );
      runtime.record.replace = replace;
      runtime.record.expiresAt = now + context.config.sessionExpiry * 1000;
      await context.store.resumeSession(open.id, replace, now, runtime.record.expiresAt);
      return { status: 200, body: openSessionView(runtime, true) };
    }
    if (runtime.record.state === 'completing')
      throw new UploadError(
        'SESSION_BUSY',
        `An earlier session for ${relativePath} is being completed; ask again in a moment`,
      );
    context.log.info(
      { event: 'session_superseded', sessionId: open.id, uploader, path: relativePath },
      `Session ${open.id} for ${relativePath} superseded by a changed file`,
    );
    await context.runtimes.exclusive(runtime, async (current) => {
      if (current && current.record.state !== 'complete') await endSession(context, current);
    });
    context.events.emit('session-cancelled', { ...sessionEventOf(runtime), reason: 'superseded' });
  }

  if (stored.exists && !replace) {
    throw new UploadError(
      'FILE_EXISTS',
      `A different file is already stored at ${relativePath}; send "replace": true to replace it`,
    );
  }
  await checkOpenSessionCap(context, uploader);
  await checkSizeAndSpace(context, size, 'size');

  const opened = await openSession(context, {
    api: 'native',
    uploader,
    path: relativePath,
    size,
    fingerprint,
    chunkSize: input.chunkSize,
    chunkCount,
    sha256Hint: sha256 ?? null,
    md5Expected: null,
    metadata: input.metadata ?? null,
    replace,
    compressionRequested: input.compress,
  });
  return { status: opened.resumed ? 200 : 201, body: openSessionView(opened.runtime, opened.resumed) };
}
