import type { Logger } from '../logging/logger.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';

/**
 * How long staged data of no session must have been left alone before a sweep deletes it, where
 * server replicas share the storage: another replica may have just started an upload whose
 * session is not recorded yet (staging is created first).
 */
export const SHARED_ORPHAN_AGE_MS = 60 * 60 * 1000;

/**
 * Runs once at start-up, before the server serves: completions cut short by a crash are open
 * again (the client completes again; commit-file recognises a file already committed), and
 * staging uploads that belong to no session (a crash between creating and recording one, data
 * of a session deleted while the server was down, whole-file uploads cut short) are deleted,
 * so staged data never leaks. With `shared` (replicas), only staged data untouched for
 * SHARED_ORPHAN_AGE_MS is deleted; the expiry job repeats that sweep.
 */
export async function recoverAtStartup(
  store: SessionStore,
  storage: UploadStorage,
  log: Logger,
  shared = false,
): Promise<void> {
  const reopened = await store.reopenInterrupted(Date.now());
  const removed = await sweepOrphanStaging(store, storage, shared);
  if (reopened || removed)
    log.info(
      { event: 'startup_recovery', reopened, orphansRemoved: removed },
      `Startup recovery: ${reopened} interrupted completions reopened, ${removed} orphaned temp folders removed`,
    );
}

/** Deletes staged data that belongs to no unfinished session; returns how many staging uploads went. */
export async function sweepOrphanStaging(
  store: SessionStore,
  storage: UploadStorage,
  shared: boolean,
): Promise<number> {
  // Listed before the sessions are read: a session recorded in between is still found live.
  const staged = await storage.listStaging(shared ? { unchangedSince: Date.now() - SHARED_ORPHAN_AGE_MS } : {});
  const live = await store.unfinishedSessionIds();
  let removed = 0;
  for (const id of staged) {
    if (live.has(id)) continue;
    await storage.abortStaging(id);
    removed += 1;
  }
  return removed;
}
