import { isUploadError } from '../../common/errors/upload-error.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import type { Logger } from '../logging/logger.js';
import type { FileKey, SessionStore } from '../sessions/session-store.js';
import type { StoredFileInfo, UploadStorage } from '../storage/upload-storage.js';
import { adoptStoredFile } from '../uploads/adopt-stored-file.js';

/** The setting that records when the index was last reconciled (epoch ms). */
const RECONCILED_AT = 'reconciled_at';
/** Index rows looked at per query when looking for rows whose file is gone. */
const PAGE = 1000;

export interface ReconcileOutcome {
  /** Stored files looked at. */
  files: number;
  /** Files the index did not know, hashed and indexed. */
  adopted: number;
  /** Files whose entry no longer described them (another size, or changed since), hashed again and re-indexed. */
  reindexed: number;
  /** Index entries whose file is gone, dropped. */
  dropped: number;
  /** Stored names that are not valid upload paths (put there by hand), left alone. */
  ignored: number;
}

/**
 * Runs at start-up, before the server serves: makes the index of stored files agree with what
 * is really stored, so that nothing acknowledged is ever answered as unknown or "different"
 * after a crash, a power cut, or an index restored from a backup.
 *
 * - A stored file without an entry (a cut between the commit and its entry, a file copied in by
 *   hand) is hashed and indexed (adoptStoredFile), and logged.
 * - An entry that no longer describes its file (another size, or the file changed after the
 *   entry was written and after the last reconciliation: a replace cut short before its entry)
 *   is re-hashed and updated when the content differs.
 * - An entry whose file is gone is dropped, and logged with its path.
 *
 * It costs one listing of `completed/` (a stat per file) and one index lookup per file; files
 * are read only when they must be hashed. The second pass over the index runs only when the
 * index holds more entries than files were matched.
 */
export async function reconcileIndex(
  store: SessionStore,
  storage: UploadStorage,
  log: Logger,
): Promise<ReconcileOutcome> {
  const startedAt = Date.now();
  const lastText = await store.getSetting(RECONCILED_AT);
  const last = lastText === undefined ? 0 : Number(lastText);
  const outcome: ReconcileOutcome = { files: 0, adopted: 0, reindexed: 0, dropped: 0, ignored: 0 };
  let described = 0;
  for await (const info of storage.listStored()) {
    outcome.files += 1;
    if (!isUploadPath(info)) {
      outcome.ignored += 1;
      log.warn(
        { event: 'index_ignored', uploader: info.uploader, path: info.path },
        `completed/${info.uploader}/${info.path} is not a valid upload path (put there by hand?); it is not indexed`,
      );
      continue;
    }
    const record = await store.getFile(info.uploader, info.path);
    const suspect = record !== undefined && info.changedAt > Math.max(record.completedAt, last);
    if (record && record.size === info.size && !suspect) {
      described += 1;
      continue;
    }
    try {
      const fresh = await adoptStoredFile({ store, storage }, info, info.size, Math.round(info.changedAt), record);
      if (record) described += 1;
      if (!record) {
        outcome.adopted += 1;
        log.warn(
          { event: 'index_adopted', uploader: info.uploader, path: info.path, size: info.size, sha256: fresh.sha256 },
          `completed/${info.uploader}/${info.path} was stored but not in the index (a crash before ` +
            `its entry was written, or copied in by hand); hashed and indexed it`,
        );
      } else if (fresh.sha256 !== record.sha256) {
        outcome.reindexed += 1;
        log.warn(
          {
            event: 'index_reindexed',
            uploader: info.uploader,
            path: info.path,
            size: info.size,
            sha256: fresh.sha256,
            was: record.sha256,
          },
          `completed/${info.uploader}/${info.path} is not the file its index entry describes ` +
            `(replaced before the entry was written?); re-indexed it`,
        );
      }
    } catch (error) {
      // A file that vanished or changed while it was read is left to the next start (or to adoption on use).
      if (!isUploadError(error) && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      log.warn(
        { event: 'index_adopt_failed', uploader: info.uploader, path: info.path, err: error },
        `Could not index completed/${info.uploader}/${info.path}: ${(error as Error).message}`,
      );
    }
  }
  if ((await store.countFiles()) > described + outcome.adopted)
    outcome.dropped = await dropVanished(store, storage, log);
  await store.putSetting(RECONCILED_AT, String(startedAt));
  if (outcome.adopted || outcome.reindexed || outcome.dropped || outcome.ignored)
    log.warn(
      { event: 'index_reconciled', ...outcome, durationMs: Date.now() - startedAt },
      `The index of stored files was reconciled with completed/: ${outcome.adopted} adopted, ` +
        `${outcome.reindexed} re-indexed, ${outcome.dropped} dropped, ${outcome.ignored} ignored ` +
        `of ${outcome.files} files`,
    );
  return outcome;
}

/** Drops the index entries whose file is no longer stored; returns how many. */
async function dropVanished(store: SessionStore, storage: UploadStorage, log: Logger): Promise<number> {
  let dropped = 0;
  let after: FileKey | undefined;
  for (;;) {
    const page = await store.listFiles(after, PAGE);
    for (const record of page) {
      const stored = await storage.stat(record).catch((error: unknown) => {
        // Something that is not a file stands there now (a folder, a symlink): the entry is wrong too.
        if (isUploadError(error)) return undefined;
        throw error;
      });
      if (stored) continue;
      await store.deleteFile(record.uploader, record.path);
      dropped += 1;
      log.warn(
        { event: 'index_dropped', uploader: record.uploader, path: record.path, sha256: record.sha256 },
        `completed/${record.uploader}/${record.path} is in the index but no longer stored (deleted ` +
          `by hand, or lost); its entry was dropped`,
      );
    }
    if (page.length < PAGE) return dropped;
    after = page[page.length - 1];
  }
}

/** True when the listed name is one an upload could have (the index is keyed by such names). */
function isUploadPath(info: StoredFileInfo): boolean {
  try {
    return (
      normaliseRelativePath(info.uploader) === info.uploader &&
      !info.uploader.includes('/') &&
      normaliseRelativePath(info.path) === info.path
    );
  } catch {
    return false;
  }
}
