import type { Logger } from '../logging/logger.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import type { SessionStore } from './session-store.js';

/**
 * Runs once at startup, before the server listens: completions cut short by a crash are open
 * again (the client completes again; commit-file recognises a file already moved), and temp
 * areas that belong to no session (a crash between creating and recording one, or data of a
 * session deleted while the server was down) are deleted, so temp data never leaks.
 */
export async function recoverAtStartup(store: SessionStore, storage: UploadStorage, log: Logger): Promise<void> {
  const now = Date.now();
  let reopened = 0;
  for (const session of store.unfinishedSessions()) {
    if (session.state === 'completing') {
      store.setState(session.id, 'open', now);
      reopened += 1;
    }
  }
  const live = new Set(store.unfinishedSessions().map((session) => session.id));
  let removed = 0;
  for (const id of await storage.listSessions()) {
    if (live.has(id)) continue;
    await storage.removeSession(id);
    removed += 1;
  }
  if (reopened || removed) log.info({ event: 'startup_recovery', reopened, orphansRemoved: removed }, `Startup recovery: ${reopened} interrupted completions reopened, ${removed} orphaned temp folders removed`);
}
