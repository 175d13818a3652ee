import { randomUUID } from 'node:crypto';
import { logUploadStarted } from '../logging/upload-log.js';
import type { SessionRecord } from '../sessions/session-record.js';
import { SessionRuntime } from '../sessions/session-runtime.js';
import type { UploadContext } from './upload-context.js';

/** What differs between a legacy init and a native create; the rest of a new record is common. */
export type NewSessionFields = Pick<
  SessionRecord,
  'api' | 'uploader' | 'path' | 'size' | 'fingerprint' | 'chunkSize' | 'chunkCount' | 'sha256Hint' | 'md5Expected' | 'metadata' | 'replace'
> & {
  /** Whether the client asked for a compressed copy; kept only at or above the threshold. */
  compressionRequested: boolean;
};

/**
 * Opens a new session for either API: its data folder, its durable record (so it survives a
 * restart), its in-memory runtime, and the "upload started" log line. The caller has validated
 * the request and checked size and free space.
 */
export async function openSession(context: UploadContext, fields: NewSessionFields): Promise<SessionRuntime> {
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
  await context.storage.createSession(record.id);
  context.store.insertSession(record);
  const runtime = new SessionRuntime(record, []);
  context.runtimes.add(runtime);
  logUploadStarted(context.log, runtime);
  return runtime;
}
