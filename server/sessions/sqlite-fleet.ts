import type Database from 'better-sqlite3';
import type {
  Announcement,
  BagCounts,
  BagQuery,
  BagRecord,
  FileToAnnounce,
  OpenSessionSummary,
  UploaderStats,
  WebhookDelivery,
  WebhookHook,
} from './fleet-records.js';
import { type BagRow, type DeliveryRow, type StatsRow, toBag, toDelivery, toUploaderStats } from './fleet-rows.js';
import type { FleetStore } from './fleet-store.js';
import type { FileRecord } from './session-record.js';
import { toFile, type FileRow } from './sqlite-rows.js';

/**
 * The fleet view's part of the SQLite session store (bags, webhook deliveries, uploader
 * statistics, announcements): its statements, and the methods SqliteSessionStore delegates to.
 * Synchronous underneath, like the rest of better-sqlite3 (the methods are async for the interface).
 */
export class SqliteFleetTables implements FleetStore {
  readonly #db: Database.Database;
  readonly #s;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#s = prepare(db);
  }

  async recentFiles(limit: number): Promise<FileRecord[]> {
    return (this.#s.recentFiles.all(limit) as FileRow[]).map(toFile);
  }

  /** Paths under `folder/` sort between `folder/` and `folder0` ('0' follows '/'): one index range. */
  async filesIn(uploader: string, folder: string): Promise<FileRecord[]> {
    const rows = this.#s.filesUnder.all(uploader, `${folder}/`, `${folder}0`) as FileRow[];
    return rows.filter((row) => !row.path.slice(folder.length + 1).includes('/')).map(toFile);
  }

  async openSessionSummaries(): Promise<OpenSessionSummary[]> {
    return this.#s.openSummaries.all() as OpenSessionSummary[];
  }

  async filesToAnnounce(limit: number): Promise<FileToAnnounce[]> {
    return (this.#s.toAnnounce.all(limit) as (FileRow & { announce: number })[]).map((row) => ({
      ...toFile(row),
      hooks: row.announce === 1,
    }));
  }

  async announce(announcement: Announcement): Promise<boolean> {
    return this.#db.transaction((): boolean => {
      const { uploader, path, sha256 } = announcement.file;
      if (this.#s.markAnnounced.run(uploader, path, sha256).changes === 0) return false;
      if (announcement.bag) this.#s.putBag.run(bagRow(announcement.bag));
      for (const delivery of announcement.deliveries) this.#s.insertDelivery.run(deliveryRow(delivery));
      return true;
    })();
  }

  async getBag(uploader: string, folder: string): Promise<BagRecord | undefined> {
    const row = this.#s.getBag.get(uploader, folder) as BagRow | undefined;
    return row ? toBag(row) : undefined;
  }

  async listBags(query: BagQuery): Promise<BagRecord[]> {
    // NULL parameters mean "any": one statement serves every combination.
    const complete = query.complete === undefined ? null : query.complete ? 1 : 0;
    const rows = this.#s.listBags.all({ uploader: query.uploader ?? null, complete, limit: query.limit }) as BagRow[];
    return rows.map(toBag);
  }

  async bagCounts(): Promise<BagCounts> {
    const row = this.#s.bagCounts.get() as {
      complete: number | null;
      incomplete: number | null;
      oldest: number | null;
    };
    return { complete: row.complete ?? 0, incomplete: row.incomplete ?? 0, oldestIncompleteUpdate: row.oldest };
  }

  async dueDeliveries(now: number, limit: number): Promise<WebhookDelivery[]> {
    return (this.#s.due.all(now, limit) as DeliveryRow[]).map(toDelivery);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    const next = this.#s.nextDue.pluck().get() as number | null | undefined;
    return next ?? undefined;
  }

  async deleteDelivery(id: string): Promise<void> {
    this.#s.deleteDelivery.run(id);
  }

  async rescheduleDelivery(id: string, attempts: number, nextAttemptAt: number, error: string): Promise<void> {
    this.#s.reschedule.run(attempts, nextAttemptAt, error, id);
  }

  async pendingDeliveries(): Promise<Record<WebhookHook, number>> {
    const counts: Record<WebhookHook, number> = { file: 0, bag: 0 };
    for (const row of this.#s.pendingByHook.all() as { hook: string; count: number }[]) {
      if (row.hook === 'file' || row.hook === 'bag') counts[row.hook] = row.count;
    }
    return counts;
  }

  async dropDeliveries(hook: WebhookHook): Promise<number> {
    return this.#s.dropHook.run(hook).changes;
  }

  async uploaderStats(): Promise<UploaderStats[]> {
    return (this.#s.allStats.all() as StatsRow[]).map(toUploaderStats);
  }

  async saveUploaderStats(stats: readonly UploaderStats[]): Promise<void> {
    this.#db.transaction(() => {
      for (const s of stats) {
        this.#s.putStats.run(s.uploader, s.lastSeen, s.day, s.bytesDay, s.filesDay, s.bytesTotal, s.filesTotal);
      }
    })();
  }
}

function prepare(db: Database.Database) {
  return {
    recentFiles: db.prepare('SELECT * FROM files ORDER BY completed_at DESC, uploader, path LIMIT ?'),
    filesUnder: db.prepare('SELECT * FROM files WHERE uploader = ? AND path > ? AND path < ?'),
    openSummaries: db.prepare(
      `SELECT s.id, s.api, s.uploader, s.path, s.size, s.created_at AS createdAt, s.updated_at AS updatedAt,
        COALESCE((SELECT SUM(c.size) FROM chunks c WHERE c.session_id = s.id), 0) AS receivedBytes
        FROM sessions s WHERE s.state != 'complete'`,
    ),
    // Without statistics (no ANALYZE) SQLite prefers files_by_time, which spares the sort but
    // walks every stored file on each call: one call per completed file made the server's
    // work per file grow with the index (0.5 ms per call at 2,000 files). The pending files
    // are few; the partial index finds them directly.
    toAnnounce: db.prepare(
      `SELECT * FROM files INDEXED BY files_to_announce WHERE announce != 0
        ORDER BY completed_at, uploader, path LIMIT ?`,
    ),
    markAnnounced: db.prepare(
      'UPDATE files SET announce = 0 WHERE uploader = ? AND path = ? AND sha256 = ? AND announce != 0',
    ),
    putBag: db.prepare(`INSERT OR REPLACE INTO bags (uploader, folder, metadata_sha256, expected, metadata_error,
      storage_identifier, missing, files, bytes, complete, completed_at, event_id, first_at, updated_at)
      VALUES (@uploader, @folder, @metadata_sha256, @expected, @metadata_error, @storage_identifier, @missing, @files,
      @bytes, @complete, @completed_at, @event_id, @first_at, @updated_at)`),
    getBag: db.prepare('SELECT * FROM bags WHERE uploader = ? AND folder = ?'),
    listBags: db.prepare(
      `SELECT * FROM bags WHERE (@uploader IS NULL OR uploader = @uploader)
        AND (@complete IS NULL OR complete = @complete) ORDER BY updated_at DESC, uploader, folder LIMIT @limit`,
    ),
    bagCounts: db.prepare(
      `SELECT SUM(complete) AS complete, SUM(1 - complete) AS incomplete,
        MIN(CASE WHEN complete = 0 THEN updated_at END) AS oldest FROM bags`,
    ),
    insertDelivery: db.prepare(`INSERT OR IGNORE INTO webhook_deliveries
      (id, hook, body, created_at, attempts, next_attempt_at, last_error)
      VALUES (@id, @hook, @body, @created_at, @attempts, @next_attempt_at, @last_error)`),
    due: db.prepare('SELECT * FROM webhook_deliveries WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?'),
    nextDue: db.prepare('SELECT MIN(next_attempt_at) FROM webhook_deliveries'),
    deleteDelivery: db.prepare('DELETE FROM webhook_deliveries WHERE id = ?'),
    reschedule: db.prepare(
      'UPDATE webhook_deliveries SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?',
    ),
    pendingByHook: db.prepare('SELECT hook, COUNT(*) AS count FROM webhook_deliveries GROUP BY hook'),
    dropHook: db.prepare('DELETE FROM webhook_deliveries WHERE hook = ?'),
    allStats: db.prepare('SELECT * FROM uploader_stats'),
    putStats: db.prepare(`INSERT OR REPLACE INTO uploader_stats
      (uploader, last_seen, day, bytes_day, files_day, bytes_total, files_total) VALUES (?, ?, ?, ?, ?, ?, ?)`),
  };
}

function bagRow(bag: BagRecord): BagRow {
  return {
    uploader: bag.uploader,
    folder: bag.folder,
    metadata_sha256: bag.metadataSha256,
    expected: bag.expected === null ? null : JSON.stringify(bag.expected),
    metadata_error: bag.metadataError,
    storage_identifier: bag.storageIdentifier,
    missing: JSON.stringify(bag.missing),
    files: bag.files,
    bytes: bag.bytes,
    complete: bag.complete ? 1 : 0,
    completed_at: bag.completedAt,
    event_id: bag.eventId,
    first_at: bag.firstAt,
    updated_at: bag.updatedAt,
  };
}

function deliveryRow(delivery: WebhookDelivery): DeliveryRow {
  return {
    id: delivery.id,
    hook: delivery.hook,
    body: delivery.body,
    created_at: delivery.createdAt,
    attempts: delivery.attempts,
    next_attempt_at: delivery.nextAttemptAt,
    last_error: delivery.lastError,
  };
}
