import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import { endSession, sessionEventOf } from './cancel-session.js';
import type { UploadContext } from './upload-context.js';

/**
 * A session's staged data is gone while the server runs (removed by hand or by a cron job, as
 * the Python dashboard's leaked chunks needed). What was acknowledged cannot be trusted any
 * more, so the session is dropped, never re-created empty or committed with holes. The client is
 * told so: native 404 SESSION_NOT_FOUND (the agent then starts the file over in a new session),
 * legacy 400 as for an unknown upload_id. Returns the error to throw.
 */
export async function dropSessionWithLostData(context: UploadContext, runtime: SessionRuntime): Promise<UploadError> {
  const { record } = runtime;
  const stored = await context.store.getSession(record.id);
  if (!stored || stored.state === 'complete') {
    // Ended by another server process (cancelled, expired, completed) while this one used it.
    runtime.ended = true;
    return new UploadError(
      record.api === 'legacy' ? 'INVALID_FIELD' : 'SESSION_NOT_FOUND',
      `The session for ${record.path} was ${stored ? 'completed' : 'cancelled or expired'} meanwhile`,
    );
  }
  context.log.error(
    {
      event: 'session_data_lost',
      sessionId: record.id,
      path: record.path,
      uploader: record.uploader,
      receivedChunks: runtime.chunks.size,
    },
    `The data of the session for ${record.path} is gone from the ` +
      `server's temp folder; the session is dropped and must start again`,
  );
  await endSession(context, runtime);
  const message =
    `The data of the session for ${record.path} is gone from the server's temp ` +
    `folder (removed by hand?); the session was dropped: start the upload again`;
  const error = new UploadError(record.api === 'legacy' ? 'INVALID_FIELD' : 'SESSION_NOT_FOUND', message);
  context.events.emit('session-failed', { ...sessionEventOf(runtime), code: error.code, message, ended: true });
  return error;
}
