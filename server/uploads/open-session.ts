import { randomUUID } from 'node:crypto';
import { UploadError } from '../../common/errors/upload-error.js';
import { SessionRuntime } from '../runtime/session-runtime.js';
import { nativeChunkSize, type SessionRecord } from '../sessions/session-record.js';
import type { UploadContext } from './upload-context.js';
import { logUploadStarted } from './upload-log.js';

/** What differs between a legacy init and a native create; the rest of a new record is common. */
export type NewSessionFields = Pick<
  SessionRecord,
  | 'api'
  | 'uploader'
  | 'path'
  | 'size'
  | 'fingerprint'
  | 'chunkSize'
  | 'chunkCount'
  | 'sha256Hint'
  | 'md5Expected'
  | 'metadata'
  | 'replace'
> & {
  /** Whether the client asked for a compressed copy; kept only at or above the threshold. */
  compressionRequested: boolean;
};

export interface OpenedSession {
  runtime: SessionRuntime;
  /**
   * True when the store had an open native session for the same file meanwhile (another process
   * created it): that one is resumed.
   */
  resumed: boolean;
}

/**
 * Opens a new session for either API: its staging upload, its durable record (so it survives a
 * restart), its in-memory runtime, the "upload started" log line and event. The caller has
 * validated the request and checked size and free space. A native session is recorded with
 * the store's create-or-resume, so that two creates of one file can never make two sessions.
 */
export async function openSession(context: UploadContext, fields: NewSessionFields): Promise<OpenedSession> {
  const { compressionRequested, ...rest } = fields;
  const now = Date.now();
  const record: SessionRecord = {
    ...rest,
    id: randomUUID(),
    compress: compressionRequested && fields.size >= context.config.compressionThreshold,
    state: 'open',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + context.config.sessionExpiry * 1000,
    result: null,
  };
  // A native session's chunks have one size and the file one path: S3 stages them as a
  // multipart upload at the final key.
  await context.storage.createStaging(
    record.id,
    record.api === 'native'
      ? { chunks: { size: nativeChunkSize(record), target: { uploader: record.uploader, path: record.path } } }
      : {},
  );
  try {
    return await recordSession(context, record);
  } catch (error) {
    // The record could not be written (a full database...): its staging upload goes too.
    await context.storage.abortStaging(record.id).catch(() => undefined);
    throw error;
  }
}

async function recordSession(context: UploadContext, record: SessionRecord): Promise<OpenedSession> {
  if (record.api === 'native') {
    const outcome = await context.store.createOrResume(record);
    if (outcome.resumed) {
      await context.storage.abortStaging(record.id);
      const runtime = await context.runtimes.find(outcome.session.id);
      // Gone again between the two calls (cancelled, expired): the client asks again.
      if (!runtime)
        throw new UploadError(
          'SESSION_BUSY',
          `The session for ${record.path} changed while this one was being created; ask again`,
        );
      runtime.record.replace = outcome.session.replace;
      runtime.record.expiresAt = outcome.session.expiresAt;
      return { runtime, resumed: true };
    }
  } else {
    await context.store.insertSession(record);
  }
  const runtime = new SessionRuntime(record, []);
  context.runtimes.add(runtime);
  logUploadStarted(context.log, runtime);
  const r = runtime.record;
  context.events.emit('session-created', {
    sessionId: r.id,
    api: r.api,
    uploader: r.uploader,
    path: r.path,
    size: r.size,
    chunkCount: r.chunkCount,
  });
  return { runtime, resumed: false };
}
