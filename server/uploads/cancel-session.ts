import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import type { UploadContext } from './upload-context.js';

/**
 * Ends a session and deletes its data: chunk requests in flight are aborted, the record and
 * its chunks are deleted, the temp area removed. A completed session only loses its tombstone
 * (the stored file stays).
 */
export async function cancelSession(context: UploadContext, runtime: SessionRuntime): Promise<void> {
  if (runtime.record.state === 'completing') throw new UploadError('SESSION_BUSY', `The session for ${runtime.record.path} is being completed`);
  runtime.ended = true;
  const gone = new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled`);
  const inFlight = [...runtime.inFlight.values()];
  for (const request of inFlight) request.abort(gone);
  await Promise.allSettled(inFlight.map((request) => request.done));
  context.store.deleteSession(runtime.id);
  context.runtimes.drop(runtime.id);
  await runtime.pump?.catch(() => undefined);
  await runtime.lock.run(() => context.storage.removeSession(runtime.id));
}
