import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { SessionEventBase } from '../events/upload-events.js';
import type { UploadContext } from './upload-context.js';

/**
 * Ends a session and deletes its data: chunk requests in flight are aborted, the record and
 * its chunks are deleted, the staging upload aborted. A completed session only loses its
 * tombstone (the stored file stays). Shared by cancel, supersede, expiry and lost data.
 */
export async function endSession(context: UploadContext, runtime: SessionRuntime): Promise<void> {
  if (runtime.record.state === 'completing')
    throw new UploadError('SESSION_BUSY', `The session for ${runtime.record.path} is being completed`);
  runtime.ended = true;
  const gone = new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled`);
  const inFlight = [...runtime.inFlight.values()];
  for (const request of inFlight) request.abort(gone);
  await Promise.allSettled(inFlight.map((request) => request.done));
  await context.store.deleteSession(runtime.id);
  context.runtimes.drop(runtime.id);
  await runtime.pump?.catch(() => undefined);
  await runtime.lock.run(() => context.storage.abortStaging(runtime.id));
}

/** DELETE /v1/sessions/:id: the session and its data are gone (after a completion running elsewhere, if any). */
export async function cancelSession(context: UploadContext, runtime: SessionRuntime): Promise<void> {
  await context.runtimes.exclusive(runtime, async (current) => {
    if (!current)
      throw new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled or expired`);
    await endSession(context, current);
  });
  const { record } = runtime;
  context.log.info(
    { event: 'session_cancelled', sessionId: runtime.id, uploader: record.uploader, path: record.path },
    `Cancelled upload of ${record.path}`,
  );
  context.events.emit('session-cancelled', { ...sessionEventOf(runtime), reason: 'client' });
}

/** The fields every session event carries. */
export function sessionEventOf(runtime: SessionRuntime): SessionEventBase {
  const r = runtime.record;
  return { sessionId: r.id, api: r.api, uploader: r.uploader, path: r.path, size: r.size };
}
