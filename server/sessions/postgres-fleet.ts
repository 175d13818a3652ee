import type pg from 'pg';
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
import { inTransaction } from './postgres-transaction.js';

const BAG_COLUMNS = `uploader, folder, metadata_sha256, expected, metadata_error, storage_identifier, missing, files,
  bytes, complete, completed_at, event_id, first_at, updated_at`;

/**
 * The fleet view's part of the PostgreSQL session store (bags, webhook deliveries, uploader
 * statistics, announcements): the methods PostgresSessionStore delegates to, the same as
 * SqliteFleetTables's. What SQLite does in one transaction is one transaction here too, so
 * replicas racing to announce one file record it once (the first UPDATE of the file row wins;
 * the other sees it announced once the first commits).
 */
export class PostgresFleetTables implements FleetStore {
  readonly #pool: pg.Pool;

  /** `pool` must parse BIGINT as numbers (PostgresSessionStore's does). */
  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async recentFiles(limit: number): Promise<FileRecord[]> {
    const { rows } = await this.#pool.query<FileRow>(
      'SELECT * FROM files ORDER BY completed_at DESC, uploader, path LIMIT $1',
      [limit],
    );
    return rows.map(toFile);
  }

  /**
   * Paths under `folder/` sort between `folder/` and `folder0` in byte order ('0' follows '/'):
   * one range of the files_in_folder index, whatever the database's collation.
   */
  async filesIn(uploader: string, folder: string): Promise<FileRecord[]> {
    const { rows } = await this.#pool.query<FileRow>(
      'SELECT * FROM files WHERE uploader = $1 AND path COLLATE "C" > $2 AND path COLLATE "C" < $3',
      [uploader, `${folder}/`, `${folder}0`],
    );
    return rows.filter((row) => !row.path.slice(folder.length + 1).includes('/')).map(toFile);
  }

  async openSessionSummaries(): Promise<OpenSessionSummary[]> {
    const { rows } = await this.#pool.query<OpenSessionSummary>(
      `SELECT s.id, s.api, s.uploader, s.path, s.size, s.created_at AS "createdAt", s.updated_at AS "updatedAt",
        COALESCE((SELECT SUM(c.size) FROM chunks c WHERE c.session_id = s.id), 0)::bigint AS "receivedBytes"
        FROM sessions s WHERE s.state <> 'complete'`,
    );
    return rows.map((row) => ({ ...row, receivedBytes: Number(row.receivedBytes) }));
  }

  async filesToAnnounce(limit: number): Promise<FileToAnnounce[]> {
    const { rows } = await this.#pool.query<FileRow & { announce: number }>(
      'SELECT * FROM files WHERE announce <> 0 ORDER BY completed_at, uploader, path LIMIT $1',
      [limit],
    );
    return rows.map((row) => ({ ...toFile(row), hooks: row.announce === 1 }));
  }

  async announce(announcement: Announcement): Promise<boolean> {
    return this.#transaction(async (client) => {
      const { uploader, path, sha256 } = announcement.file;
      const marked = await client.query(
        'UPDATE files SET announce = 0 WHERE uploader = $1 AND path = $2 AND sha256 = $3 AND announce <> 0',
        [uploader, path, sha256],
      );
      if (!marked.rowCount) return false;
      if (announcement.bag) await putBag(client, announcement.bag);
      for (const delivery of announcement.deliveries) {
        await client.query(
          `INSERT INTO webhook_deliveries (id, hook, body, created_at, attempts, next_attempt_at, last_error)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
          [
            delivery.id,
            delivery.hook,
            delivery.body,
            delivery.createdAt,
            delivery.attempts,
            delivery.nextAttemptAt,
            delivery.lastError,
          ],
        );
      }
      return true;
    });
  }

  async getBag(uploader: string, folder: string): Promise<BagRecord | undefined> {
    const { rows } = await this.#pool.query<BagRow>(
      `SELECT ${BAG_COLUMNS} FROM bags WHERE uploader = $1 AND folder = $2`,
      [uploader, folder],
    );
    return rows[0] ? toBag(rows[0]) : undefined;
  }

  async listBags(query: BagQuery): Promise<BagRecord[]> {
    // NULL parameters mean "any": one statement serves every combination.
    const { rows } = await this.#pool.query<BagRow>(
      `SELECT ${BAG_COLUMNS} FROM bags WHERE ($1::text IS NULL OR uploader = $1)
        AND ($2::boolean IS NULL OR complete = $2) ORDER BY updated_at DESC, uploader, folder LIMIT $3`,
      [query.uploader ?? null, query.complete ?? null, query.limit],
    );
    return rows.map(toBag);
  }

  async bagCounts(): Promise<BagCounts> {
    const { rows } = await this.#pool.query<{
      complete: number | string;
      incomplete: number | string;
      oldest: number | string | null;
    }>(
      `SELECT COUNT(*) FILTER (WHERE complete) AS complete, COUNT(*) FILTER (WHERE NOT complete) AS incomplete,
        MIN(updated_at) FILTER (WHERE NOT complete) AS oldest FROM bags`,
    );
    const row = rows[0];
    return {
      complete: Number(row?.complete ?? 0),
      incomplete: Number(row?.incomplete ?? 0),
      oldestIncompleteUpdate: row?.oldest == null ? null : Number(row.oldest),
    };
  }

  async dueDeliveries(now: number, limit: number): Promise<WebhookDelivery[]> {
    const { rows } = await this.#pool.query<DeliveryRow>(
      'SELECT * FROM webhook_deliveries WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2',
      [now, limit],
    );
    return rows.map(toDelivery);
  }

  async nextDeliveryAt(): Promise<number | undefined> {
    const { rows } = await this.#pool.query<{ next: number | string | null }>(
      'SELECT MIN(next_attempt_at) AS next FROM webhook_deliveries',
    );
    const next = rows[0]?.next;
    return next == null ? undefined : Number(next);
  }

  async deleteDelivery(id: string): Promise<void> {
    await this.#pool.query('DELETE FROM webhook_deliveries WHERE id = $1', [id]);
  }

  async rescheduleDelivery(id: string, attempts: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.#pool.query(
      'UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4',
      [attempts, nextAttemptAt, error, id],
    );
  }

  async pendingDeliveries(): Promise<Record<WebhookHook, number>> {
    const counts: Record<WebhookHook, number> = { file: 0, bag: 0 };
    const { rows } = await this.#pool.query<{ hook: string; count: number | string }>(
      'SELECT hook, COUNT(*) AS count FROM webhook_deliveries GROUP BY hook',
    );
    for (const row of rows) {
      if (row.hook === 'file' || row.hook === 'bag') counts[row.hook] = Number(row.count);
    }
    return counts;
  }

  async dropDeliveries(hook: WebhookHook): Promise<number> {
    const { rowCount } = await this.#pool.query('DELETE FROM webhook_deliveries WHERE hook = $1', [hook]);
    return rowCount ?? 0;
  }

  async uploaderStats(): Promise<UploaderStats[]> {
    const { rows } = await this.#pool.query<StatsRow>('SELECT * FROM uploader_stats');
    return rows.map(toUploaderStats);
  }

  async saveUploaderStats(stats: readonly UploaderStats[]): Promise<void> {
    if (stats.length === 0) return;
    await this.#transaction(async (client) => {
      for (const s of stats) {
        await client.query(
          `INSERT INTO uploader_stats (uploader, last_seen, day, bytes_day, files_day, bytes_total, files_total)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (uploader) DO UPDATE SET last_seen = excluded.last_seen, day = excluded.day,
             bytes_day = excluded.bytes_day, files_day = excluded.files_day, bytes_total = excluded.bytes_total,
             files_total = excluded.files_total`,
          [s.uploader, s.lastSeen, s.day, s.bytesDay, s.filesDay, s.bytesTotal, s.filesTotal],
        );
      }
    });
  }

  #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, work);
  }
}

/** Writes a bag record, replacing an earlier one of its folder. */
async function putBag(client: pg.PoolClient, bag: BagRecord): Promise<void> {
  await client.query(
    `INSERT INTO bags (${BAG_COLUMNS})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (uploader, folder) DO UPDATE SET metadata_sha256 = excluded.metadata_sha256,
       expected = excluded.expected, metadata_error = excluded.metadata_error,
       storage_identifier = excluded.storage_identifier, missing = excluded.missing, files = excluded.files,
       bytes = excluded.bytes, complete = excluded.complete, completed_at = excluded.completed_at,
       event_id = excluded.event_id, first_at = excluded.first_at, updated_at = excluded.updated_at`,
    [
      bag.uploader,
      bag.folder,
      bag.metadataSha256,
      bag.expected === null ? null : JSON.stringify(bag.expected),
      bag.metadataError,
      bag.storageIdentifier,
      JSON.stringify(bag.missing),
      bag.files,
      bag.bytes,
      bag.complete,
      bag.completedAt,
      bag.eventId,
      bag.firstAt,
      bag.updatedAt,
    ],
  );
}
