import pg from 'pg';
import { present } from '../../common/errors/present.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { AdvisoryLocks, advisoryLockId } from './advisory-locks.js';
import { PostgresFleetTables } from './postgres-fleet.js';
import { migratePostgres } from './postgres-schema.js';
import type {
  ChunkRecord,
  CompletionResult,
  FileRecord,
  PrefixAdvance,
  SessionRecord,
  StoredPrefix,
} from './session-record.js';
import type { CreateOrResumeOutcome, FileKey, SessionStore } from './session-store.js';
import { fileRow, sessionRow, toFile, toSession, type FileRow, type SessionRow } from './sqlite-rows.js';
import { inTransaction } from './postgres-transaction.js';

/** BIGINT columns come back as numbers (sizes and epoch milliseconds stay far below 2^53). */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const SESSION_COLUMNS = `id, api, uploader, path, size, fingerprint, chunk_size, chunk_count, sha256_hint, md5_expected,
  metadata, replace_existing, compress, state, created_at, updated_at, expires_at, result`;

/** A shared rate-limit counter's state after a hit. */
export interface CounterHit {
  hits: number;
  resetAt: number;
}

/**
 * The session store in PostgreSQL, shared by server replicas: sessions, their chunks and saved
 * prefix hashes, the file index, the shared rate-limit counters, and the advisory locks that
 * let one replica at a time complete a session, commit a path or run expiry. Every change
 * that replicas can race on is one statement or one transaction: create-or-resume of one file
 * (under a transaction-scoped advisory lock of the file, and a unique index as the last word),
 * acknowledging a chunk together with the prefix hash it advances (compare-and-set), and
 * completing (the session, its chunks and the file record together).
 */
export class PostgresSessionStore implements SessionStore {
  readonly #pool: pg.Pool;
  /** Locks shared by every replica (see advisory-locks.ts). */
  readonly locks: AdvisoryLocks;
  readonly fleet: PostgresFleetTables;

  private constructor(pool: pg.Pool, locks: AdvisoryLocks) {
    this.#pool = pool;
    this.locks = locks;
    this.fleet = new PostgresFleetTables(pool);
  }

  /** Connects, migrates the schema and opens the lock connection; `where` names the database in errors. */
  static async open(url: string, options: { poolSize: number; where: string }): Promise<PostgresSessionStore> {
    const config: pg.PoolConfig = {
      connectionString: url,
      types,
      max: options.poolSize,
      connectionTimeoutMillis: 10_000,
      application_name: 'ros2-upload-server',
    };
    const pool = new pg.Pool(config);
    // A connection that breaks while idle in the pool is dropped by it; the error must not end the process.
    pool.on('error', () => undefined);
    let locks: AdvisoryLocks | undefined;
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client, options.where);
      } finally {
        client.release();
      }
      locks = await AdvisoryLocks.connect({
        connectionString: url,
        types,
        application_name: 'ros2-upload-server locks',
      });
      return new PostgresSessionStore(pool, locks);
    } catch (error) {
      await locks?.close();
      await pool.end().catch(() => undefined);
      if (error instanceof UploadError) throw error;
      throw new UploadError('STATE_DIR', `Cannot use the database ${options.where}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async checkReady(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  async insertSession(record: SessionRecord): Promise<void> {
    await this.#insert(this.#pool, record);
  }

  async createOrResume(record: SessionRecord): Promise<CreateOrResumeOutcome> {
    return this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [
        advisoryLockId(`file:${record.uploader}\0${record.path}`),
      ]);
      const { rows } = await client.query<SessionRow>(
        `SELECT ${SESSION_COLUMNS} FROM sessions WHERE uploader = $1 AND path = $2 AND size = $3 AND fingerprint = $4
         AND api = 'native' AND state <> 'complete' ORDER BY created_at DESC LIMIT 1`,
        [record.uploader, record.path, record.size, record.fingerprint],
      );
      const open = rows[0];
      if (!open) {
        await this.#insert(client, record);
        return { session: record, resumed: false };
      }
      await client.query('UPDATE sessions SET replace_existing = $1, updated_at = $2, expires_at = $3 WHERE id = $4', [
        record.replace,
        record.updatedAt,
        record.expiresAt,
        open.id,
      ]);
      return {
        session: {
          ...toSession(fromPg(open)),
          replace: record.replace,
          updatedAt: record.updatedAt,
          expiresAt: record.expiresAt,
        },
        resumed: true,
      };
    });
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const { rows } = await this.#pool.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = $1`, [id]);
    return rows[0] ? toSession(fromPg(rows[0])) : undefined;
  }

  async openSessionsFor(uploader: string, relativePath: string): Promise<SessionRecord[]> {
    const { rows } = await this.#pool.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions
       WHERE uploader = $1 AND path = $2 AND api = 'native' AND state <> 'complete'
       ORDER BY created_at DESC`,
      [uploader, relativePath],
    );
    return rows.map((row) => toSession(fromPg(row)));
  }

  async resumeSession(id: string, replace: boolean, now: number, expiresAt: number): Promise<void> {
    await this.#pool.query(
      'UPDATE sessions SET replace_existing = $1, updated_at = $2, expires_at = $3 WHERE id = $4',
      [replace, now, expiresAt, id],
    );
  }

  async deleteSession(id: string): Promise<void> {
    await this.#pool.query('DELETE FROM sessions WHERE id = $1', [id]);
  }

  async expiredSessions(now: number, limit: number): Promise<SessionRecord[]> {
    const { rows } = await this.#pool.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`,
      [now, limit],
    );
    return rows.map((row) => toSession(fromPg(row)));
  }

  async unfinishedSessionIds(): Promise<Set<string>> {
    const { rows } = await this.#pool.query<{ id: string }>(`SELECT id FROM sessions WHERE state <> 'complete'`);
    return new Set(rows.map((row) => row.id));
  }

  async reopenInterrupted(now: number): Promise<number> {
    // Replicas never store 'completing' (a completion holds the session's advisory lock instead),
    // so there is nothing to reopen; a row left so by other means is opened.
    const { rowCount } = await this.#pool.query(
      `UPDATE sessions SET state = 'open', updated_at = $1 WHERE state = 'completing'`,
      [now],
    );
    return rowCount ?? 0;
  }

  async chunks(id: string): Promise<ChunkRecord[]> {
    const { rows } = await this.#pool.query<{ idx: number; size: number; crc: number; offset: number | null }>(
      'SELECT idx, size, crc, "offset" FROM chunks WHERE session_id = $1 ORDER BY idx',
      [id],
    );
    return rows.map((row) => ({ index: row.idx, size: row.size, crc: row.crc, offset: row.offset }));
  }

  async ackChunk(
    id: string,
    chunk: ChunkRecord,
    now: number,
    expiresAt: number,
    prefix?: PrefixAdvance,
  ): Promise<void> {
    // One statement: the session's expiry and (compare-and-set) prefix, and the chunk row, or
    // nothing at all when the session is gone.
    const { rowCount } = await this.#pool.query(
      `WITH session AS (
         UPDATE sessions SET updated_at = $6, expires_at = $7,
           prefix_chunks = CASE WHEN $8::integer IS NOT NULL AND prefix_chunks = $8 THEN $9 ELSE prefix_chunks END,
           prefix_bytes = CASE WHEN $8::integer IS NOT NULL AND prefix_chunks = $8 THEN $10 ELSE prefix_bytes END,
           prefix_sha256 = CASE WHEN $8::integer IS NOT NULL AND prefix_chunks = $8 THEN $11 ELSE prefix_sha256 END,
           prefix_md5 = CASE WHEN $8::integer IS NOT NULL AND prefix_chunks = $8 THEN $12 ELSE prefix_md5 END
         WHERE id = $1 RETURNING id)
       INSERT INTO chunks (session_id, idx, size, crc, "offset") SELECT id, $2, $3, $4, $5 FROM session
       ON CONFLICT (session_id, idx)
       DO UPDATE SET size = excluded.size, crc = excluded.crc, "offset" = excluded."offset"`,
      [
        id,
        chunk.index,
        chunk.size,
        chunk.crc,
        chunk.offset,
        now,
        expiresAt,
        prefix?.from ?? null,
        prefix?.next.chunks ?? null,
        prefix?.next.bytes ?? null,
        prefix ? Buffer.from(prefix.next.sha256) : null,
        prefix?.next.md5 ? Buffer.from(prefix.next.md5) : null,
      ],
    );
    if (!rowCount)
      throw new UploadError('SESSION_NOT_FOUND', 'The upload session was cancelled or expired while the chunk arrived');
  }

  async deleteChunks(id: string, indexes: readonly number[]): Promise<void> {
    if (indexes.length === 0) return;
    await this.#pool.query('DELETE FROM chunks WHERE session_id = $1 AND idx = ANY($2::integer[])', [id, [...indexes]]);
  }

  async setChunkOffsets(id: string, changes: readonly { index: number; offset: number | null }[]): Promise<void> {
    if (changes.length === 0) return;
    await this.#pool.query(
      `UPDATE chunks SET "offset" = change."offset" FROM unnest($2::integer[], $3::bigint[]) AS change (idx, "offset")
       WHERE chunks.session_id = $1 AND chunks.idx = change.idx`,
      [id, changes.map((change) => change.index), changes.map((change) => change.offset)],
    );
  }

  async completeSession(
    id: string,
    result: CompletionResult,
    file: FileRecord,
    now: number,
    expiresAt: number,
  ): Promise<void> {
    await this.#transaction(async (client) => {
      await client.query(
        `UPDATE sessions SET state = 'complete', result = $1, updated_at = $2, expires_at = $3,
         prefix_sha256 = NULL, prefix_md5 = NULL WHERE id = $4`,
        [JSON.stringify(result), now, expiresAt, id],
      );
      await client.query('DELETE FROM chunks WHERE session_id = $1', [id]);
      await this.#putFile(client, file);
    });
  }

  async setResult(id: string, result: CompletionResult): Promise<void> {
    await this.#pool.query('UPDATE sessions SET result = $1 WHERE id = $2', [JSON.stringify(result), id]);
  }

  async getFile(uploader: string, relativePath: string): Promise<FileRecord | undefined> {
    const { rows } = await this.#pool.query<FileRow>('SELECT * FROM files WHERE uploader = $1 AND path = $2', [
      uploader,
      relativePath,
    ]);
    return rows[0] ? toFile(rows[0]) : undefined;
  }

  async putFile(file: FileRecord): Promise<void> {
    await this.#putFile(this.#pool, file);
  }

  async setCompressedSize(uploader: string, relativePath: string, size: number | null): Promise<void> {
    await this.#pool.query('UPDATE files SET compressed_size = $1 WHERE uploader = $2 AND path = $3', [
      size,
      uploader,
      relativePath,
    ]);
  }

  async filesOf(uploader: string, limit: number): Promise<FileRecord[]> {
    const { rows } = await this.#pool.query<FileRow>(
      'SELECT * FROM files WHERE uploader = $1 ORDER BY completed_at DESC, path LIMIT $2',
      [uploader, limit],
    );
    return rows.map(toFile);
  }

  async deleteFile(uploader: string, relativePath: string): Promise<void> {
    await this.#pool.query('DELETE FROM files WHERE uploader = $1 AND path = $2', [uploader, relativePath]);
  }

  async countFiles(): Promise<number> {
    const { rows } = await this.#pool.query<{ count: string }>('SELECT COUNT(*) AS count FROM files');
    return Number(present(rows[0], 'a count').count);
  }

  /** In byte order (COLLATE "C"), so that the pages follow one another whatever the database's collation. */
  async listFiles(after: FileKey | undefined, limit: number): Promise<FileRecord[]> {
    const order = 'ORDER BY uploader COLLATE "C", path COLLATE "C" LIMIT';
    const { rows } = after
      ? await this.#pool.query<FileRow>(
          `SELECT * FROM files WHERE (uploader COLLATE "C", path COLLATE "C") > ($1 COLLATE "C", $2 COLLATE "C")
           ${order} $3`,
          [after.uploader, after.path, limit],
        )
      : await this.#pool.query<FileRow>(`SELECT * FROM files ${order} $1`, [limit]);
    return rows.map(toFile);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [
      `setting:${key}`,
    ]);
    return rows[0]?.value;
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.#pool.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [`setting:${key}`, value],
    );
  }

  async openSessionCount(uploader: string): Promise<number> {
    const { rows } = await this.#pool.query<{ count: string }>(
      `SELECT COUNT(*) AS count FROM sessions WHERE uploader = $1 AND state <> 'complete'`,
      [uploader],
    );
    return Number(present(rows[0], 'a count').count);
  }

  async savedPrefix(id: string): Promise<StoredPrefix | undefined> {
    const { rows } = await this.#pool.query<{
      prefix_chunks: number;
      prefix_bytes: number;
      prefix_sha256: Buffer | null;
      prefix_md5: Buffer | null;
    }>('SELECT prefix_chunks, prefix_bytes, prefix_sha256, prefix_md5 FROM sessions WHERE id = $1', [id]);
    const row = rows[0];
    if (!row?.prefix_sha256) return undefined;
    return { chunks: row.prefix_chunks, bytes: row.prefix_bytes, sha256: row.prefix_sha256, md5: row.prefix_md5 };
  }

  async savePrefix(id: string, from: number | null, next: StoredPrefix): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      `UPDATE sessions SET prefix_chunks = $3, prefix_bytes = $4, prefix_sha256 = $5, prefix_md5 = $6
       WHERE id = $1 AND ($2::integer IS NULL OR prefix_chunks = $2)`,
      [id, from, next.chunks, next.bytes, Buffer.from(next.sha256), next.md5 ? Buffer.from(next.md5) : null],
    );
    return (rowCount ?? 0) > 0;
  }

  /** `amount` hits of a rate-limit counter (one round trip): a new window starts when the last one ended. */
  async hitCounter(key: string, windowMs: number, now: number, amount = 1): Promise<CounterHit> {
    const { rows } = await this.#pool.query<{ hits: number; reset_at: number }>(
      `INSERT INTO rate_limits (key, hits, reset_at) VALUES ($1, $4::integer, $2::bigint + $3::bigint)
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN rate_limits.reset_at <= $2::bigint THEN $4::integer
                     ELSE rate_limits.hits + $4::integer END,
         reset_at = CASE WHEN rate_limits.reset_at <= $2::bigint THEN $2::bigint + $3::bigint
                         ELSE rate_limits.reset_at END
       RETURNING hits, reset_at`,
      [key, now, windowMs, amount],
    );
    const row = present(rows[0], 'the counter row of an upsert');
    return { hits: row.hits, resetAt: row.reset_at };
  }

  /** Takes back one hit (express-rate-limit's skipped requests). */
  /** The count of `key` in its current window; undefined when it has none (or its window ended). */
  async getCounter(key: string, now: number): Promise<CounterHit | undefined> {
    const { rows } = await this.#pool.query<{ hits: number; reset_at: number }>(
      'SELECT hits, reset_at FROM rate_limits WHERE key = $1 AND reset_at > $2::bigint',
      [key, now],
    );
    const row = rows[0];
    return row ? { hits: Number(row.hits), resetAt: Number(row.reset_at) } : undefined;
  }

  async unhitCounter(key: string): Promise<void> {
    await this.#pool.query('UPDATE rate_limits SET hits = GREATEST(hits - 1, 0) WHERE key = $1', [key]);
  }

  async resetCounter(key: string): Promise<void> {
    await this.#pool.query('DELETE FROM rate_limits WHERE key = $1', [key]);
  }

  /** Deletes counters whose window ended (run with expiry). */
  async pruneCounters(now: number): Promise<number> {
    const { rowCount } = await this.#pool.query('DELETE FROM rate_limits WHERE reset_at <= $1', [now]);
    return rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.locks.close();
    await this.#pool.end().catch(() => undefined);
  }

  async #insert(client: pg.Pool | pg.PoolClient, record: SessionRecord): Promise<void> {
    const row = sessionRow(record);
    await client.query(
      `INSERT INTO sessions (${SESSION_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
      [
        row.id,
        row.api,
        row.uploader,
        row.path,
        row.size,
        row.fingerprint,
        row.chunk_size,
        row.chunk_count,
        row.sha256_hint,
        row.md5_expected,
        row.metadata,
        record.replace,
        record.compress,
        row.state,
        row.created_at,
        row.updated_at,
        row.expires_at,
        row.result,
      ],
    );
  }

  /**
   * New content is pending announcement (announce = 1); the same record written again (a
   * deduplicated completion) keeps its state, so it is not announced twice (as the SQLite store).
   */
  async #putFile(client: pg.Pool | pg.PoolClient, file: FileRecord): Promise<void> {
    const row = fileRow(file);
    await client.query(
      `INSERT INTO files
         (uploader, path, size, sha256, md5, fingerprint, completed_at, metadata, compressed_size, session_id, announce)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)
       ON CONFLICT (uploader, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, md5 = excluded.md5,
         fingerprint = excluded.fingerprint, completed_at = excluded.completed_at, metadata = excluded.metadata,
         compressed_size = excluded.compressed_size, session_id = excluded.session_id,
         announce = CASE WHEN files.sha256 = excluded.sha256 AND files.completed_at = excluded.completed_at
           THEN files.announce ELSE 1 END`,
      [
        row.uploader,
        row.path,
        row.size,
        row.sha256,
        row.md5,
        row.fingerprint,
        row.completed_at,
        row.metadata,
        row.compressed_size,
        row.session_id,
      ],
    );
  }

  #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, work);
  }
}

/** A sessions row from PostgreSQL (booleans) in SQLite's shape (integers), for the shared converters. */
function fromPg(row: SessionRow): SessionRow {
  const raw = row as unknown as { replace_existing: boolean | number; compress: boolean | number };
  return { ...row, replace_existing: raw.replace_existing ? 1 : 0, compress: raw.compress ? 1 : 0 };
}
