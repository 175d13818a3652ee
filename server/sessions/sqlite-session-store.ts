import Database from 'better-sqlite3';
import { makeDirectorySync } from '../../common/fs/make-directory.js';
import path from 'node:path';
import type { ChunkRecord, CompletionResult, FileRecord, PrefixAdvance, SessionRecord } from './session-record.js';
import { migrateSchema } from './session-schema.js';
import type { CreateOrResumeOutcome, SessionStore } from './session-store.js';
import { fileRow, sessionRow, toFile, toSession, type ChunkRow, type FileRow, type SessionRow } from './sqlite-rows.js';

/**
 * The session store in SQLite (WAL) under `<uploadDir>/state/uploads.db`, so uploads survive a
 * restart or kill -9 and resume. A chunk row is written only after the chunk was verified;
 * per-commit fsync is not needed for that (WAL with synchronous=NORMAL), because completion
 * re-verifies everything before a file is made visible. better-sqlite3 is synchronous: each
 * method does its work before it returns its (already settled) promise, so a transaction is
 * never interleaved with other requests.
 */
export class SqliteSessionStore implements SessionStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(file: string) {
    makeDirectorySync(path.dirname(file));
    this.#db = new Database(file);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('busy_timeout = 5000');
      migrateSchema(this.#db, file);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    this.#statements = prepare(this.#db);
  }

  async insertSession(record: SessionRecord): Promise<void> {
    this.#statements.insertSession.run(sessionRow(record));
  }

  async createOrResume(record: SessionRecord): Promise<CreateOrResumeOutcome> {
    return this.#db.transaction((): CreateOrResumeOutcome => {
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
    })();
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = this.#statements.getSession.get(id) as SessionRow | undefined;
    return row ? toSession(row) : undefined;
  }

  async openSessionsFor(uploader: string, relativePath: string): Promise<SessionRecord[]> {
    return (this.#statements.openFor.all(uploader, relativePath) as SessionRow[]).map(toSession);
  }

  async resumeSession(id: string, replace: boolean, now: number, expiresAt: number): Promise<void> {
    this.#db.transaction(() => {
      this.#statements.setReplace.run(replace ? 1 : 0, id);
      this.#statements.touch.run(now, expiresAt, id);
    })();
  }

  async deleteSession(id: string): Promise<void> {
    this.#db.transaction(() => {
      this.#statements.deleteChunks.run(id);
      this.#statements.deleteSession.run(id);
    })();
  }

  async expiredSessions(now: number): Promise<SessionRecord[]> {
    return (this.#statements.expired.all(now) as SessionRow[]).map(toSession);
  }

  async unfinishedSessionIds(): Promise<Set<string>> {
    return new Set(this.#statements.unfinishedIds.pluck().all() as string[]);
  }

  async reopenInterrupted(now: number): Promise<number> {
    return this.#statements.reopen.run(now).changes;
  }

  async chunks(id: string): Promise<ChunkRecord[]> {
    return (this.#statements.chunks.all(id) as ChunkRow[]).map((row) => ({
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
    this.#db.transaction(() => {
      this.#statements.putChunk.run(id, chunk.index, chunk.size, chunk.crc, chunk.offset);
      this.#statements.touch.run(now, expiresAt, id);
    })();
  }

  async deleteChunks(id: string, indexes: readonly number[]): Promise<void> {
    this.#db.transaction(() => {
      for (const index of indexes) this.#statements.deleteChunk.run(id, index);
    })();
  }

  async setChunkOffsets(id: string, changes: readonly { index: number; offset: number | null }[]): Promise<void> {
    this.#db.transaction(() => {
      for (const change of changes) this.#statements.setChunkOffset.run(change.offset, id, change.index);
    })();
  }

  async completeSession(
    id: string,
    result: CompletionResult,
    file: FileRecord,
    now: number,
    expiresAt: number,
  ): Promise<void> {
    this.#db.transaction(() => {
      this.#statements.complete.run(JSON.stringify(result), now, expiresAt, id);
      this.#statements.deleteChunks.run(id);
      this.#statements.putFile.run(fileRow(file));
    })();
  }

  async setResult(id: string, result: CompletionResult): Promise<void> {
    this.#statements.setResult.run(JSON.stringify(result), id);
  }

  async getFile(uploader: string, relativePath: string): Promise<FileRecord | undefined> {
    const row = this.#statements.getFile.get(uploader, relativePath) as FileRow | undefined;
    return row ? toFile(row) : undefined;
  }

  async putFile(file: FileRecord): Promise<void> {
    this.#statements.putFile.run(fileRow(file));
  }

  async setCompressedSize(uploader: string, relativePath: string, size: number | null): Promise<void> {
    this.#statements.setCompressed.run(size, uploader, relativePath);
  }

  async filesOf(uploader: string, limit: number): Promise<FileRecord[]> {
    return (this.#statements.filesOf.all(uploader, limit) as FileRow[]).map(toFile);
  }

  async checkReady(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
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
    expired: db.prepare('SELECT * FROM sessions WHERE expires_at <= ?'),
    unfinishedIds: db.prepare(`SELECT id FROM sessions WHERE state != 'complete'`),
    getFile: db.prepare('SELECT * FROM files WHERE uploader = ? AND path = ?'),
    putFile: db.prepare(`INSERT OR REPLACE INTO files
      (uploader, path, size, sha256, md5, fingerprint, completed_at, metadata, compressed_size, session_id)
      VALUES
      (@uploader, @path, @size, @sha256, @md5, @fingerprint, @completed_at, @metadata, @compressed_size, @session_id)`),
    setCompressed: db.prepare('UPDATE files SET compressed_size = ? WHERE uploader = ? AND path = ?'),
    filesOf: db.prepare('SELECT * FROM files WHERE uploader = ? ORDER BY completed_at DESC, path LIMIT ?'),
  };
}
