import Database from 'better-sqlite3';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { makeDirectorySync } from '../../common/fs/make-directory.js';
import { SYNC_FLAGS } from '../../common/fs/sync-folder.js';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import type { ChunkRecord, CompletionResult, FileRecord, PrefixAdvance, SessionRecord } from './session-record.js';
import { migrateSchema } from './session-schema.js';
import { SqliteFleetTables } from './sqlite-fleet.js';
import type { CreateOrResumeOutcome, FileKey, SessionStore } from './session-store.js';
import { fileRow, sessionRow, toFile, toSession, type ChunkRow, type FileRow, type SessionRow } from './sqlite-rows.js';
import { WalSync } from './wal-sync.js';

/**
 * The session store in SQLite (WAL) under `<uploadDir>/state/uploads.db`, so uploads survive a
 * restart, kill -9 or power loss and resume. **Nothing is answered from a change before it is
 * durable:** every method resolves only once the changes it made or saw are on disk (see
 * wal-sync.ts: the log is fsynced after the commit, concurrent commits sharing one fsync). A
 * full disk rejects with UploadError INSUFFICIENT_STORAGE. better-sqlite3 is synchronous: each
 * method does its database work before its first await, so a transaction is never interleaved
 * with other requests.
 */
export class SqliteSessionStore implements SessionStore {
  readonly #db: Database.Database;
  readonly #statements;
  readonly fleet: SqliteFleetTables;
  readonly #wal: WalSync;

  constructor(file: string) {
    makeDirectorySync(path.dirname(file), 0o750);
    this.#db = new Database(file);
    try {
      this.#db.pragma('journal_mode = WAL');
      // Consistent across power loss; durability comes from WalSync's fsync after each commit.
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('busy_timeout = 5000');
      migrateSchema(this.#db, file);
      // The database, its log and their folder entries are durable before anything is served.
      for (const name of [file, `${file}-wal`, path.dirname(file)]) syncNow(name);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    this.#statements = prepare(this.#db);
    this.fleet = new SqliteFleetTables(this.#db);
    this.#wal = new WalSync(`${file}-wal`);
  }

  /** Runs a change (synchronously, so nothing interleaves), then waits until it is durable. */
  async #write<T>(change: () => T): Promise<T> {
    let result: T;
    try {
      result = change();
    } catch (error) {
      throw databaseFull(error) ?? error;
    }
    await this.#wal.durable(this.#wal.changed());
    return result;
  }

  /** Runs a read, then waits until every change it could have seen is durable. */
  async #read<T>(query: () => T): Promise<T> {
    const result = query();
    await this.#wal.durable(this.#wal.latest);
    return result;
  }

  async insertSession(record: SessionRecord): Promise<void> {
    await this.#write(() => this.#statements.insertSession.run(sessionRow(record)));
  }

  async createOrResume(record: SessionRecord): Promise<CreateOrResumeOutcome> {
    return this.#write(
      this.#db.transaction((): CreateOrResumeOutcome => {
        const open = this.#statements.sameFile.get(record.uploader, record.path, record.size, record.fingerprint) as
          | SessionRow
          | undefined;
        if (!open) {
          this.#statements.insertSession.run(sessionRow(record));
          return { session: record, resumed: false };
        }
        this.#statements.setReplace.run(record.replace ? 1 : 0, open.id);
        this.#statements.touch.run(record.updatedAt, record.expiresAt, open.id);
        return {
          session: {
            ...toSession(open),
            replace: record.replace,
            updatedAt: record.updatedAt,
            expiresAt: record.expiresAt,
          },
          resumed: true,
        };
      }),
    );
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = await this.#read(() => this.#statements.getSession.get(id) as SessionRow | undefined);
    return row ? toSession(row) : undefined;
  }

  async openSessionsFor(uploader: string, relativePath: string): Promise<SessionRecord[]> {
    return (await this.#read(() => this.#statements.openFor.all(uploader, relativePath) as SessionRow[])).map(
      toSession,
    );
  }

  async resumeSession(id: string, replace: boolean, now: number, expiresAt: number): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        this.#statements.setReplace.run(replace ? 1 : 0, id);
        this.#statements.touch.run(now, expiresAt, id);
      }),
    );
  }

  async deleteSession(id: string): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        this.#statements.deleteChunks.run(id);
        this.#statements.deleteSession.run(id);
      }),
    );
  }

  async expiredSessions(now: number, limit: number): Promise<SessionRecord[]> {
    return (await this.#read(() => this.#statements.expired.all(now, limit) as SessionRow[])).map(toSession);
  }

  async unfinishedSessionIds(): Promise<Set<string>> {
    return new Set(await this.#read(() => this.#statements.unfinishedIds.pluck().all() as string[]));
  }

  async reopenInterrupted(now: number): Promise<number> {
    return (await this.#write(() => this.#statements.reopen.run(now))).changes;
  }

  async chunks(id: string): Promise<ChunkRecord[]> {
    return (await this.#read(() => this.#statements.chunks.all(id) as ChunkRow[])).map((row) => ({
      index: row.idx,
      size: row.size,
      crc: row.crc,
      offset: row.offset,
    }));
  }

  /** The prefix hash stays in this process's memory (one process owns the SQLite file): `prefix` is not stored. */
  async ackChunk(
    id: string,
    chunk: ChunkRecord,
    now: number,
    expiresAt: number,
    _prefix?: PrefixAdvance,
  ): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        this.#statements.putChunk.run(id, chunk.index, chunk.size, chunk.crc, chunk.offset);
        this.#statements.touch.run(now, expiresAt, id);
      }),
    );
  }

  async deleteChunks(id: string, indexes: readonly number[]): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        for (const index of indexes) this.#statements.deleteChunk.run(id, index);
      }),
    );
  }

  async setChunkOffsets(id: string, changes: readonly { index: number; offset: number | null }[]): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        for (const change of changes) this.#statements.setChunkOffset.run(change.offset, id, change.index);
      }),
    );
  }

  async completeSession(
    id: string,
    result: CompletionResult,
    file: FileRecord,
    now: number,
    expiresAt: number,
  ): Promise<void> {
    await this.#write(
      this.#db.transaction(() => {
        this.#statements.complete.run(JSON.stringify(result), now, expiresAt, id);
        this.#statements.deleteChunks.run(id);
        this.#statements.putFile.run(fileRow(file));
      }),
    );
  }

  async setResult(id: string, result: CompletionResult): Promise<void> {
    await this.#write(() => this.#statements.setResult.run(JSON.stringify(result), id));
  }

  async getFile(uploader: string, relativePath: string): Promise<FileRecord | undefined> {
    const row = await this.#read(() => this.#statements.getFile.get(uploader, relativePath) as FileRow | undefined);
    return row ? toFile(row) : undefined;
  }

  async putFile(file: FileRecord): Promise<void> {
    await this.#write(() => this.#statements.putFile.run(fileRow(file)));
  }

  async setCompressedSize(uploader: string, relativePath: string, size: number | null): Promise<void> {
    await this.#write(() => this.#statements.setCompressed.run(size, uploader, relativePath));
  }

  async filesOf(uploader: string, limit: number): Promise<FileRecord[]> {
    return (await this.#read(() => this.#statements.filesOf.all(uploader, limit) as FileRow[])).map(toFile);
  }

  async deleteFile(uploader: string, relativePath: string): Promise<void> {
    await this.#write(() => this.#statements.deleteFile.run(uploader, relativePath));
  }

  async countFiles(): Promise<number> {
    return this.#read(() => this.#statements.countFiles.pluck().get() as number);
  }

  async listFiles(after: FileKey | undefined, limit: number): Promise<FileRecord[]> {
    const rows = await this.#read(
      () =>
        (after
          ? this.#statements.filesAfter.all(after.uploader, after.uploader, after.path, limit)
          : this.#statements.filesFirst.all(limit)) as FileRow[],
    );
    return rows.map(toFile);
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.#read(() => this.#statements.getSetting.pluck().get(`setting:${key}`) as string | undefined);
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.#write(() => this.#statements.putSetting.run(`setting:${key}`, value));
  }

  async openSessionCount(uploader: string): Promise<number> {
    return this.#read(() => this.#statements.openCount.pluck().get(uploader) as number);
  }

  async checkReady(): Promise<void> {
    await this.#read(() => this.#db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    // Changes still being made durable finish first (closing checkpoints the log and deletes it).
    await this.#wal.durable(this.#wal.latest).catch(() => undefined);
    if (this.#db.open) this.#db.close();
  }
}

function prepare(db: Database.Database) {
  return {
    insertSession:
      db.prepare(`INSERT INTO sessions (id, api, uploader, path, size, fingerprint, chunk_size, chunk_count,
      sha256_hint, md5_expected, metadata, replace_existing, compress, state, created_at, updated_at, expires_at,
      result)
      VALUES (@id, @api, @uploader, @path, @size, @fingerprint, @chunk_size, @chunk_count, @sha256_hint, @md5_expected,
      @metadata, @replace_existing, @compress, @state, @created_at, @updated_at, @expires_at, @result)`),
    getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
    openFor: db.prepare(
      `SELECT * FROM sessions WHERE uploader = ? AND path = ? AND ` +
        `api = 'native' AND state != 'complete' ORDER BY created_at DESC`,
    ),
    sameFile: db.prepare(`SELECT * FROM sessions WHERE uploader = ? AND path = ? AND size = ? AND fingerprint = ?
      AND api = 'native' AND state != 'complete' ORDER BY created_at DESC LIMIT 1`),
    reopen: db.prepare(`UPDATE sessions SET state = 'open', updated_at = ? WHERE state = 'completing'`),
    touch: db.prepare('UPDATE sessions SET updated_at = ?, expires_at = ? WHERE id = ?'),
    setReplace: db.prepare('UPDATE sessions SET replace_existing = ? WHERE id = ?'),
    complete: db.prepare(
      `UPDATE sessions SET state = 'complete', result = ?, updated_at = ?, expires_at = ? WHERE id = ?`,
    ),
    setResult: db.prepare('UPDATE sessions SET result = ? WHERE id = ?'),
    deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
    deleteChunks: db.prepare('DELETE FROM chunks WHERE session_id = ?'),
    chunks: db.prepare('SELECT idx, size, crc, offset FROM chunks WHERE session_id = ? ORDER BY idx'),
    putChunk: db.prepare('INSERT OR REPLACE INTO chunks (session_id, idx, size, crc, offset) VALUES (?, ?, ?, ?, ?)'),
    setChunkOffset: db.prepare('UPDATE chunks SET offset = ? WHERE session_id = ? AND idx = ?'),
    deleteChunk: db.prepare('DELETE FROM chunks WHERE session_id = ? AND idx = ?'),
    expired: db.prepare('SELECT * FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?'),
    unfinishedIds: db.prepare(`SELECT id FROM sessions WHERE state != 'complete'`),
    getFile: db.prepare('SELECT * FROM files WHERE uploader = ? AND path = ?'),
    // New content is pending announcement (announce = 1); the same record written again (a
    // deduplicated completion) keeps its state, so it is not announced twice.
    putFile: db.prepare(`INSERT INTO files
      (uploader, path, size, sha256, md5, fingerprint, completed_at, metadata, compressed_size, session_id, announce)
      VALUES
      (@uploader, @path, @size, @sha256, @md5, @fingerprint, @completed_at, @metadata, @compressed_size, @session_id, 1)
      ON CONFLICT (uploader, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, md5 = excluded.md5,
      fingerprint = excluded.fingerprint, completed_at = excluded.completed_at, metadata = excluded.metadata,
      compressed_size = excluded.compressed_size, session_id = excluded.session_id,
      announce = CASE WHEN files.sha256 = excluded.sha256 AND files.completed_at = excluded.completed_at
        THEN files.announce ELSE 1 END`),
    setCompressed: db.prepare('UPDATE files SET compressed_size = ? WHERE uploader = ? AND path = ?'),
    filesOf: db.prepare('SELECT * FROM files WHERE uploader = ? ORDER BY completed_at DESC, path LIMIT ?'),
    deleteFile: db.prepare('DELETE FROM files WHERE uploader = ? AND path = ?'),
    countFiles: db.prepare('SELECT COUNT(*) FROM files'),
    filesFirst: db.prepare('SELECT * FROM files ORDER BY uploader, path LIMIT ?'),
    filesAfter: db.prepare(
      'SELECT * FROM files WHERE uploader > ? OR (uploader = ? AND path > ?) ORDER BY uploader, path LIMIT ?',
    ),
    getSetting: db.prepare('SELECT value FROM meta WHERE key = ?'),
    putSetting: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    openCount: db.prepare(`SELECT COUNT(*) FROM sessions WHERE uploader = ? AND state != 'complete'`),
  };
}

/** SQLite's "database or disk is full" as the wire's INSUFFICIENT_STORAGE (507); undefined for any other error. */
function databaseFull(error: unknown): UploadError | undefined {
  if ((error as { code?: unknown } | undefined)?.code !== 'SQLITE_FULL') return undefined;
  return new UploadError(
    'INSUFFICIENT_STORAGE',
    "The server's session database has no space left on its disk; nothing of this request was recorded, retry later",
    { cause: error },
  );
}

/** fsync of a file or folder, at start-up. */
function syncNow(name: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(name, SYNC_FLAGS);
    fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
