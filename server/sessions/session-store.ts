import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { migrateSchema } from './session-schema.js';
import type { ChunkRecord, CompletionResult, FileRecord, SessionRecord, SessionState } from './session-record.js';

interface SessionRow {
  id: string;
  api: string;
  uploader: string;
  path: string;
  size: number;
  fingerprint: string | null;
  chunk_size: number | null;
  chunk_count: number;
  sha256_hint: string | null;
  md5_expected: string | null;
  metadata: string | null;
  replace_existing: number;
  compress: number;
  state: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  result: string | null;
}

interface FileRow {
  uploader: string;
  path: string;
  size: number;
  sha256: string;
  md5: string | null;
  fingerprint: string;
  completed_at: number;
  metadata: string | null;
  compressed_size: number | null;
  session_id: string | null;
}

/**
 * Sessions, their acknowledged chunks and the index of completed files, in SQLite (WAL) under
 * `<uploadDir>/state/uploads.db`, so uploads survive a restart or kill -9 and resume. A chunk
 * row is written only after the chunk was verified; per-commit fsync is not needed for that
 * (WAL with synchronous=NORMAL), because completion re-verifies everything before a file is
 * made visible.
 */
export class SessionStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    migrateSchema(this.#db, file);
    const db = this.#db;
    this.#statements = {
      insertSession: db.prepare(`INSERT INTO sessions (id, api, uploader, path, size, fingerprint, chunk_size, chunk_count, sha256_hint, md5_expected,
        metadata, replace_existing, compress, state, created_at, updated_at, expires_at, result)
        VALUES (@id, @api, @uploader, @path, @size, @fingerprint, @chunk_size, @chunk_count, @sha256_hint, @md5_expected,
        @metadata, @replace_existing, @compress, @state, @created_at, @updated_at, @expires_at, @result)`),
      getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
      openFor: db.prepare(`SELECT * FROM sessions WHERE uploader = ? AND path = ? AND api = 'native' AND state != 'complete' ORDER BY created_at DESC`),
      setState: db.prepare('UPDATE sessions SET state = ?, updated_at = ? WHERE id = ?'),
      touch: db.prepare('UPDATE sessions SET updated_at = ?, expires_at = ? WHERE id = ?'),
      setReplace: db.prepare('UPDATE sessions SET replace_existing = ? WHERE id = ?'),
      complete: db.prepare(`UPDATE sessions SET state = 'complete', result = ?, updated_at = ?, expires_at = ? WHERE id = ?`),
      setResult: db.prepare('UPDATE sessions SET result = ? WHERE id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteChunks: db.prepare('DELETE FROM chunks WHERE session_id = ?'),
      chunks: db.prepare('SELECT idx, size, crc, offset FROM chunks WHERE session_id = ? ORDER BY idx'),
      putChunk: db.prepare('INSERT OR REPLACE INTO chunks (session_id, idx, size, crc, offset) VALUES (?, ?, ?, ?, ?)'),
      setChunkOffset: db.prepare('UPDATE chunks SET offset = ? WHERE session_id = ? AND idx = ?'),
      deleteChunk: db.prepare('DELETE FROM chunks WHERE session_id = ? AND idx = ?'),
      expired: db.prepare('SELECT * FROM sessions WHERE expires_at <= ?'),
      unfinished: db.prepare(`SELECT * FROM sessions WHERE state != 'complete'`),
      allIds: db.prepare('SELECT id FROM sessions'),
      getFile: db.prepare('SELECT * FROM files WHERE uploader = ? AND path = ?'),
      putFile: db.prepare(`INSERT OR REPLACE INTO files (uploader, path, size, sha256, md5, fingerprint, completed_at, metadata, compressed_size, session_id)
        VALUES (@uploader, @path, @size, @sha256, @md5, @fingerprint, @completed_at, @metadata, @compressed_size, @session_id)`),
      setCompressed: db.prepare('UPDATE files SET compressed_size = ? WHERE uploader = ? AND path = ?'),
      filesOf: db.prepare('SELECT * FROM files WHERE uploader = ? ORDER BY completed_at DESC, path LIMIT ?'),
    };
  }

  insertSession(record: SessionRecord): void {
    this.#statements.insertSession.run({
      id: record.id,
      api: record.api,
      uploader: record.uploader,
      path: record.path,
      size: record.size,
      fingerprint: record.fingerprint,
      chunk_size: record.chunkSize,
      chunk_count: record.chunkCount,
      sha256_hint: record.sha256Hint,
      md5_expected: record.md5Expected,
      metadata: record.metadata ? JSON.stringify(record.metadata) : null,
      replace_existing: record.replace ? 1 : 0,
      compress: record.compress ? 1 : 0,
      state: record.state,
      created_at: record.createdAt,
      updated_at: record.updatedAt,
      expires_at: record.expiresAt,
      result: record.result ? JSON.stringify(record.result) : null,
    });
  }

  getSession(id: string): SessionRecord | undefined {
    const row = this.#statements.getSession.get(id) as SessionRow | undefined;
    return row ? toSession(row) : undefined;
  }

  /** Unfinished native sessions of an uploader for a path, newest first. */
  openSessionsFor(uploader: string, relativePath: string): SessionRecord[] {
    return (this.#statements.openFor.all(uploader, relativePath) as SessionRow[]).map(toSession);
  }

  setState(id: string, state: SessionState, now: number): void {
    this.#statements.setState.run(state, now, id);
  }

  touch(id: string, now: number, expiresAt: number): void {
    this.#statements.touch.run(now, expiresAt, id);
  }

  setReplace(id: string, replace: boolean): void {
    this.#statements.setReplace.run(replace ? 1 : 0, id);
  }

  /** Marks a session complete with its tombstone, records the file and drops the chunk rows, in one transaction. */
  completeSession(id: string, result: CompletionResult, file: FileRecord, now: number, expiresAt: number): void {
    this.#db.transaction(() => {
      this.#statements.complete.run(JSON.stringify(result), now, expiresAt, id);
      this.#statements.deleteChunks.run(id);
      this.putFile(file);
    })();
  }

  setResult(id: string, result: CompletionResult): void {
    this.#statements.setResult.run(JSON.stringify(result), id);
  }

  deleteSession(id: string): void {
    this.#db.transaction(() => {
      this.#statements.deleteChunks.run(id);
      this.#statements.deleteSession.run(id);
    })();
  }

  chunks(id: string): ChunkRecord[] {
    return (this.#statements.chunks.all(id) as { idx: number; size: number; crc: number; offset: number | null }[]).map((row) => ({
      index: row.idx,
      size: row.size,
      crc: row.crc,
      offset: row.offset,
    }));
  }

  putChunk(id: string, chunk: ChunkRecord): void {
    this.#statements.putChunk.run(id, chunk.index, chunk.size, chunk.crc, chunk.offset);
  }

  /** Records a verified chunk and the session's new expiry in one transaction (one WAL commit per chunk). */
  ackChunk(id: string, chunk: ChunkRecord, now: number, expiresAt: number): void {
    this.#db.transaction(() => {
      this.#statements.putChunk.run(id, chunk.index, chunk.size, chunk.crc, chunk.offset);
      this.#statements.touch.run(now, expiresAt, id);
    })();
  }

  /** A resumed session: its `replace` flag from the latest request and its new expiry, in one transaction. */
  resumeSession(id: string, replace: boolean, now: number, expiresAt: number): void {
    this.#db.transaction(() => {
      this.#statements.setReplace.run(replace ? 1 : 0, id);
      this.#statements.touch.run(now, expiresAt, id);
    })();
  }

  setChunkOffset(id: string, index: number, offset: number | null): void {
    this.#statements.setChunkOffset.run(offset, id, index);
  }

  deleteChunks(id: string, indexes?: readonly number[]): void {
    if (!indexes) {
      this.#statements.deleteChunks.run(id);
      return;
    }
    this.#db.transaction(() => {
      for (const index of indexes) this.#statements.deleteChunk.run(id, index);
    })();
  }

  /** Sets several chunks' offsets at once (the seed's un-append). */
  setChunkOffsets(id: string, changes: readonly { index: number; offset: number | null }[]): void {
    this.#db.transaction(() => {
      for (const change of changes) this.#statements.setChunkOffset.run(change.offset, id, change.index);
    })();
  }

  expiredSessions(now: number): SessionRecord[] {
    return (this.#statements.expired.all(now) as SessionRow[]).map(toSession);
  }

  unfinishedSessions(): SessionRecord[] {
    return (this.#statements.unfinished.all() as SessionRow[]).map(toSession);
  }

  sessionIds(): Set<string> {
    return new Set((this.#statements.allIds.all() as { id: string }[]).map((row) => row.id));
  }

  getFile(uploader: string, relativePath: string): FileRecord | undefined {
    const row = this.#statements.getFile.get(uploader, relativePath) as FileRow | undefined;
    return row ? toFile(row) : undefined;
  }

  putFile(file: FileRecord): void {
    this.#statements.putFile.run({
      uploader: file.uploader,
      path: file.path,
      size: file.size,
      sha256: file.sha256,
      md5: file.md5,
      fingerprint: file.fingerprint,
      completed_at: file.completedAt,
      metadata: file.metadata ? JSON.stringify(file.metadata) : null,
      compressed_size: file.compressedSize,
      session_id: file.sessionId,
    });
  }

  setCompressedSize(uploader: string, relativePath: string, size: number | null): void {
    this.#statements.setCompressed.run(size, uploader, relativePath);
  }

  filesOf(uploader: string, limit: number): FileRecord[] {
    return (this.#statements.filesOf.all(uploader, limit) as FileRow[]).map(toFile);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}

function toSession(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    api: row.api as SessionRecord['api'],
    uploader: row.uploader,
    path: row.path,
    size: row.size,
    fingerprint: row.fingerprint,
    chunkSize: row.chunk_size,
    chunkCount: row.chunk_count,
    sha256Hint: row.sha256_hint,
    md5Expected: row.md5_expected,
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, unknown>) : null,
    replace: row.replace_existing === 1,
    compress: row.compress === 1,
    state: row.state as SessionState,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    result: row.result ? (JSON.parse(row.result) as CompletionResult) : null,
  };
}

function toFile(row: FileRow): FileRecord {
  return {
    uploader: row.uploader,
    path: row.path,
    size: row.size,
    sha256: row.sha256,
    md5: row.md5,
    fingerprint: row.fingerprint,
    completedAt: row.completed_at,
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, unknown>) : null,
    compressedSize: row.compressed_size,
    sessionId: row.session_id,
  };
}
