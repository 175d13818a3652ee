import type { Logger } from '../logging/logger.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';

/**
 * Runs once at start-up, before the server serves: completions cut short by a crash are open
 * again (the client completes again; commit-file recognises a file already committed), and
 * staging uploads that belong to no session (a crash between creating and recording one, data
 * of a session deleted while the server was down, whole-file uploads cut short) are deleted,
 * so staged data never leaks.
 */
export async function recoverAtStartup(store: SessionStore, storage: UploadStorage, log: Logger): Promise<void> {
  const reopened = await store.reopenInterrupted(Date.now());
  const live = await store.unfinishedSessionIds();
  let removed = 0;
  for (const id of await storage.listStaging()) {
    if (live.has(id)) continue;
    await storage.abortStaging(id);
    removed += 1;
  }
  if (reopened || removed)
    log.info(
      { event: 'startup_recovery', reopened, orphansRemoved: removed },
      `Startup recovery: ${reopened} interrupted completions reopened, ${removed} orphaned temp folders removed`,
    );
}
