import { UploadError } from '../../common/errors/upload-error.js';
import type { UploadContext } from './upload-context.js';

/** Seconds a client refused for too many open sessions is told to wait. */
const RETRY_AFTER_SECONDS = 60;

/**
 * Refuses a new session (native create, legacy init; never a resume) when its uploader already
 * has `maxOpenSessions` unfinished ones: 429 TOO_MANY_SESSIONS with Retry-After. Sessions live
 * in the store, not in memory, so the cap bounds the database and the disk (each holds a staging
 * folder), not the server's memory. The count is read from the store before the session is
 * recorded, so concurrent creates of one uploader may pass the cap by as many as run at once.
 */
export async function checkOpenSessionCap(context: UploadContext, uploader: string): Promise<void> {
  const limit = context.config.maxOpenSessions;
  if (limit <= 0) return;
  const open = await context.store.openSessionCount(uploader);
  if (open < limit) return;
  throw new UploadError(
    'TOO_MANY_SESSIONS',
    `Uploader ${uploader} has ${open} unfinished upload sessions, the server's limit per uploader ` +
      `(maxOpenSessions ${limit}): finish or cancel some (abandoned ones expire after sessionExpiry), then retry`,
    { details: { retryAfter: RETRY_AFTER_SECONDS } },
  );
}
