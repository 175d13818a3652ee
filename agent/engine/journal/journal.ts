import Database from 'better-sqlite3';
import { makeDirectorySync } from '../../../common/fs/make-directory.js';
import path from 'node:path';
import { UploadError } from '../../../common/errors/upload-error.js';
import { openRebuildableDatabase, schemaProblem, type SetAsideFile } from '../../../common/sqlite/open-database.js';
import { sqliteFailureOf } from '../../../common/sqlite/sqlite-failure.js';
import { JOURNAL_FILE, SCHEMA_VERSION, schemaColumns, schemaSql } from './journal-schema.js';

export type { SetAsideFile };

export interface JournalOpenOptions {
  /** Open an existing journal without writing to it (`status`): no schema, no recovery. */
  readonly?: boolean;
  /** A damaged journal was set aside and a new one started (the caller logs it loudly). */
  onSetAside?: (event: SetAsideFile) => void;
  /** A write failed because the state disk is full (called before the STATE_DISK_FULL error is thrown). */
  onDiskFull?: (error: UploadError) => void;
}

/** How long durable() waits for more callers before its one fsync (group commit). */
const GROUP_COMMIT_MS = 30;

/** States stored in the journal (the engine's finer states are not persisted). */
export type JournalState = 'queued' | 'completed' | 'failed';

export interface UploadRow {
  id: string;
  seq: number;
  localPath: string;
  remotePath: string;
  bagName: string;
  priority: number;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
  state: JournalState;
  bytesTotal: number;
  size: number | undefined;
  mtimeMs: number | undefined;
  sessionId: string | undefined;
  sessionServer: string | undefined;
  chunkSize: number | undefined;
  sha256: string | undefined;
  errorCode: string | undefined;
  lastError: string | undefined;
  queuedAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
}

export interface CompletedFileRow {
  localPath: string;
  remotePath: string;
  server: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  completedAt: string;
}

export interface SessionHint {
  sessionId: string;
  sessionServer: string;
  chunkSize: number;
  size: number;
  mtimeMs: number;
}

type Raw = Record<string, unknown>;

/**
 * The persistent journal (SQLite via better-sqlite3, WAL): the queue, session ids, acknowledged
 * chunks, states, and the files the server verified. Writes are small and synchronous.
 *
 * Durability. The connection runs with `synchronous = NORMAL`: every commit reaches the OS before
 * the call returns, so all of it survives a crash of the process (kill -9), but the WAL is not
 * fsynced per commit, so a power loss can lose the *last* transactions (WAL recovery keeps a
 * prefix of the history: the journal is always consistent, only some latest changes may be
 * missing). An fsync of the WAL (a commit with `synchronous = FULL`) makes every earlier commit
 * durable too. Each record is written one of three ways, by what losing it would cost:
 *
 * - **Durable at once** (a FULL commit each): files queued (`insertUploads`: one commit for a
 *   whole batch, so a folder costs one fsync), an upload failed (`markFailed`), put back
 *   (`requeue`) or cancelled (`deleteUpload`), and a priority change. A queued file that is
 *   forgotten is never uploaded (for a file handed over by `addUpload` nobody queues it again).
 * - **Announced only once durable** (group commit): files the server verified
 *   (`markCompleted`). They are committed at once, and the engine waits for `durable()`, which
 *   fsyncs once for every caller of a short window (GROUP_COMMIT_MS), before it emits
 *   `completed`. "Completed" is what the after-upload policy acts on when it moves or deletes
 *   the local file: were it lost after the file was deleted, the upload would come back as
 *   pending and fail for a missing file. Should the power fail inside the window, before anyone
 *   was told, the upload is simply still pending after the restart: create-or-resume (or a
 *   whole-file PUT) finds the file on the server and it completes again without its chunks
 *   being sent twice (a whole small file, at most one chunk's worth, is sent again).
 * - **Hints** (plain NORMAL commits): `setSession` (with the start time), `clearSession`,
 *   `ackChunk` and `setError`. Losing them in a power loss costs nothing but a cosmetic status:
 *   after a restart every pending upload asks the server (create-or-resume finds its session by
 *   uploader, path, size and fingerprint, whatever session id the journal held) and sends
 *   exactly the chunks the server does not hold; acknowledged chunks only feed the progress
 *   shown before that answer; a stale session id is only used to cancel it; a lost start time
 *   or error text is reported again.
 */
export class Journal {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #statements: ReturnType<typeof prepare>;
  readonly #onDiskFull: ((error: UploadError) => void) | undefined;
  /** The group commit waiting for its window to end. */
  #pendingSync:
    | { timer: NodeJS.Timeout; done: Promise<void>; resolve: () => void; reject: (error: unknown) => void }
    | undefined;

  private constructor(file: string, db: Database.Database, onDiskFull?: (error: UploadError) => void) {
    this.file = file;
    this.#db = db;
    this.#statements = prepare(db);
    this.#onDiskFull = onDiskFull;
  }

  /**
   * Opens (creating the directory and the schema) the journal in `stateDir`. A damaged journal
   * (garbage, truncated, malformed, another schema or a newer version) is set aside as
   * `journal.sqlite.corrupt-<time>` and a new one is started: the journal is a hint, the server
   * and the recording folder are the truth (see the class comment).
   */
  static open(stateDir: string, options: JournalOpenOptions = {}): Journal {
    const file = path.join(stateDir, JOURNAL_FILE);
    let db: Database.Database;
    try {
      if (options.readonly) {
        db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
      } else {
        makeDirectorySync(stateDir);
        db = openRebuildableDatabase(file, {
          setUp: setUpJournal,
          onSetAside: options.onSetAside ?? (() => undefined),
        });
      }
    } catch (error) {
      if (error instanceof UploadError) throw error;
      const full = sqliteFailureOf(error) === 'full';
      throw new UploadError(
        full ? 'STATE_DISK_FULL' : 'STATE_DIR',
        `Cannot open the journal ${file}: ${(error as Error).message}${full ? ' (free space on its disk)' : ''}`,
        { cause: error },
      );
    }
    try {
      return new Journal(file, db, options.onDiskFull);
    } catch (error) {
      db.close();
      throw new UploadError('STATE_DIR', `Cannot use the journal ${file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * Runs one read or write of the journal. A full state disk becomes STATE_DISK_FULL (reported
   * to onDiskFull first; nothing was written, the same call succeeds once space is back), any
   * other failure STATE_DIR naming the file; neither ever escapes as a raw SQLite error.
   */
  #use<T>(what: string, action: () => T): T {
    try {
      return action();
    } catch (error) {
      if (error instanceof UploadError) throw error;
      if (sqliteFailureOf(error) === 'full') {
        const full = new UploadError(
          'STATE_DISK_FULL',
          `The journal ${this.file} cannot be written (${what}): the disk of the state directory is full; ` +
            'uploads wait until space is freed',
          { cause: error },
        );
        this.#onDiskFull?.(full);
        throw full;
      }
      throw new UploadError('STATE_DIR', `The journal ${this.file} failed (${what}): ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** A durable write that succeeds only when the state disk can take writes again (probing after STATE_DISK_FULL). */
  probeWritable(): void {
    this.#use('write probe', () => this.#durably(() => this.#statements.synced.run(new Date().toISOString())));
  }

  /** Makes pending group commits durable first. */
  close(): void {
    if (!this.#db.open) return;
    this.#syncNow();
    this.#db.close();
  }

  /**
   * Resolves once every commit made so far is durable (fsynced): one FULL commit for all callers
   * within GROUP_COMMIT_MS. Rejects with STATE_DIR when that commit fails.
   */
  durable(): Promise<void> {
    if (!this.#db.open) return Promise.resolve();
    if (!this.#pendingSync) {
      let resolve: () => void = () => {};
      let reject: (error: unknown) => void = () => {};
      const done = new Promise<void>((yes, no) => {
        resolve = yes;
        reject = no;
      });
      const timer = setTimeout(() => this.#syncNow(), GROUP_COMMIT_MS);
      this.#pendingSync = { timer, done, resolve, reject };
    }
    return this.#pendingSync.done;
  }

  #syncNow(): void {
    const pending = this.#pendingSync;
    if (!pending) return;
    this.#pendingSync = undefined;
    clearTimeout(pending.timer);
    try {
      this.#use('fsync', () => this.#durably(() => this.#statements.synced.run(new Date().toISOString())));
      pending.resolve();
    } catch (error) {
      pending.reject(error);
    }
  }

  /** Runs `write` as one transaction committed with `synchronous = FULL` (see the class comment). */
  #durably(write: () => void): void {
    // db.pragma() prepares the statement anew: SQLite applies `synchronous` when a PRAGMA is
    // compiled, so re-running one prepared statement does not reliably switch it (checked with strace).
    this.#db.pragma('synchronous = FULL');
    try {
      this.#db.transaction(write)();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }

  nextSeq(): number {
    return this.#use('read', () => ((this.#statements.maxSeq.pluck().get() as number | null) ?? 0) + 1);
  }

  /** Durable, in one transaction: one fsync however many rows. */
  insertUploads(rows: readonly UploadRow[]): void {
    this.#use('queue files', () =>
      this.#durably(() => {
        for (const row of rows) this.#statements.insert.run(toRaw(row));
      }),
    );
  }

  /** Pending (queued) and failed uploads, in queue order; plus the `recentCompleted` most recent completed ones. */
  loadUploads(recentCompleted = 100): UploadRow[] {
    return this.#use('read', () => {
      const open = (this.#statements.open.all() as Raw[]).map(fromRaw);
      const done = (this.#statements.recentCompleted.all(recentCompleted) as Raw[]).map(fromRaw).reverse();
      return [...done, ...open];
    });
  }

  getUpload(id: string): UploadRow | undefined {
    const raw = this.#use('read', () => this.#statements.get.get(id) as Raw | undefined);
    return raw ? fromRaw(raw) : undefined;
  }

  setPriority(id: string, priority: number): void {
    this.#use('set a priority', () => this.#durably(() => this.#statements.setPriority.run(priority, id)));
  }

  /** The session in use, and when the upload started (kept if already set): one hint commit. */
  setSession(id: string, startedAt: string | undefined, hint: SessionHint): void {
    this.#use('record a session', () =>
      this.#statements.setSession.run(
        hint.sessionId,
        hint.sessionServer,
        hint.chunkSize,
        hint.size,
        hint.mtimeMs,
        startedAt ?? null,
        hint.size,
        id,
      ),
    );
  }

  /** Forgets the session and its acknowledged chunks (the file restarts cleanly). */
  clearSession(id: string): void {
    this.#use('forget a session', () =>
      this.#db.transaction(() => {
        this.#statements.clearSession.run(id);
        this.#statements.clearChunks.run(id);
      })(),
    );
  }

  ackChunk(id: string, index: number): void {
    this.#use('record a chunk', () => this.#statements.ack.run(id, index));
  }

  ackedChunks(id: string): number[] {
    return this.#use('read', () => this.#statements.acked.pluck().all(id) as number[]);
  }

  setError(id: string, code: string | undefined, message: string | undefined): void {
    this.#use('record an error', () => this.#statements.setError.run(code ?? null, message ?? null, id));
  }

  /**
   * One transaction: the upload is completed (with its start time, which a whole-file upload
   * records nowhere else), its chunk hints are dropped, and the verified file is recorded.
   * Durable once `durable()` resolves (tell nobody before).
   */
  markCompleted(
    row: { id: string; sha256: string; finishedAt: string; startedAt?: string | undefined },
    file: CompletedFileRow,
  ): void {
    this.#use('record a verified file', () =>
      this.#db.transaction(() => {
        this.#statements.completed.run(row.sha256, row.finishedAt, row.startedAt ?? null, file.size, row.id);
        this.#statements.clearChunks.run(row.id);
        this.#statements.upsertCompletedFile.run(file);
      })(),
    );
  }

  /** Durable. */
  markFailed(id: string, code: string, message: string, finishedAt: string): void {
    this.#use('record a failure', () =>
      this.#durably(() => this.#statements.failed.run(code, message, finishedAt, id)),
    );
  }

  /** Back to the queue (retryFailed). Durable. */
  requeue(id: string): void {
    this.#use('queue a file again', () => this.#durably(() => this.#statements.requeue.run(id)));
  }

  /** Durable: a cancelled upload does not come back after a power loss. */
  deleteUpload(id: string): void {
    this.#use('forget an upload', () =>
      this.#durably(() => {
        this.#statements.delete.run(id);
        this.#statements.clearChunks.run(id);
      }),
    );
  }

  /** The last verified upload of a local file, if any. */
  completedFile(localPath: string): CompletedFileRow | undefined {
    return this.#use('read', () => this.#statements.completedFile.get(localPath) as CompletedFileRow | undefined);
  }

  /** Keeps the newest `keep` completed upload rows (completed_files is kept). */
  pruneCompleted(keep: number): void {
    this.#use('prune', () => this.#statements.prune.run(keep));
  }
}

/** Pragmas and schema of a journal opened for writing; a reason when the file holds another schema. */
function setUpJournal(db: Database.Database): string | undefined {
  const problem = schemaProblem(db, schemaColumns);
  if (problem) return problem;
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(schemaSql);
  const version = db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get() as string | undefined;
  if (version === undefined)
    db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)`).run(String(SCHEMA_VERSION));
  else if (Number(version) !== SCHEMA_VERSION)
    return `written with journal schema ${version}; this version of the agent uses schema ${SCHEMA_VERSION}`;
  return undefined;
}

function prepare(db: Database.Database) {
  return {
    maxSeq: db.prepare('SELECT MAX(seq) FROM uploads'),
    synced: db.prepare(
      `INSERT INTO meta (key, value) VALUES ('synced_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    ),
    insert:
      db.prepare(`INSERT INTO uploads (id, seq, local_path, remote_path, bag_name, priority, metadata, replace, state,
      bytes_total, size, mtime_ms, session_id, session_server, chunk_size, sha256, error_code, last_error, queued_at,
      started_at, finished_at)
      VALUES (@id, @seq, @local_path, @remote_path, @bag_name, @priority, @metadata, @replace, @state, @bytes_total,
      @size, @mtime_ms, @session_id, @session_server, @chunk_size, @sha256, @error_code, @last_error, @queued_at,
      @started_at, @finished_at)`),
    open: db.prepare(`SELECT * FROM uploads WHERE state IN ('queued', 'failed') ORDER BY seq`),
    recentCompleted: db.prepare(
      `SELECT * FROM uploads WHERE state = 'completed' ORDER BY finished_at DESC, seq DESC LIMIT ?`,
    ),
    get: db.prepare('SELECT * FROM uploads WHERE id = ?'),
    setPriority: db.prepare('UPDATE uploads SET priority = ? WHERE id = ?'),
    setSession:
      db.prepare(`UPDATE uploads SET session_id = ?, session_server = ?, chunk_size = ?, size = ?, mtime_ms = ?,
      started_at = COALESCE(started_at, ?), bytes_total = ? WHERE id = ?`),
    clearSession: db.prepare(
      'UPDATE uploads SET session_id = NULL, session_server = NULL, ' +
        'chunk_size = NULL, size = NULL, mtime_ms = NULL WHERE id = ?',
    ),
    clearChunks: db.prepare('DELETE FROM acked_chunks WHERE upload_id = ?'),
    ack: db.prepare('INSERT OR IGNORE INTO acked_chunks (upload_id, idx) VALUES (?, ?)'),
    acked: db.prepare('SELECT idx FROM acked_chunks WHERE upload_id = ? ORDER BY idx'),
    setError: db.prepare('UPDATE uploads SET error_code = ?, last_error = ? WHERE id = ?'),
    completed: db.prepare(`UPDATE uploads SET state = 'completed', sha256 = ?, finished_at = ?,
      started_at = COALESCE(started_at, ?), bytes_total = ?, error_code = NULL, last_error = NULL, session_id = NULL
      WHERE id = ?`),
    failed: db.prepare(
      `UPDATE uploads SET state = 'failed', error_code = ?, last_error = ?, finished_at = ? WHERE id = ?`,
    ),
    requeue: db.prepare(
      `UPDATE uploads SET state = 'queued', error_code = NULL, last_error = NULL, finished_at = NULL WHERE id = ?`,
    ),
    delete: db.prepare('DELETE FROM uploads WHERE id = ?'),
    upsertCompletedFile:
      db.prepare(`INSERT INTO completed_files (local_path, remote_path, server, size, mtime_ms, sha256, completed_at)
      VALUES (@localPath, @remotePath, @server, @size, @mtimeMs, @sha256, @completedAt)
      ON CONFLICT (local_path) DO UPDATE SET remote_path = excluded.remote_path, server = excluded.server,
      size = excluded.size, mtime_ms = excluded.mtime_ms, sha256 = excluded.sha256,
      completed_at = excluded.completed_at`),
    completedFile:
      db.prepare(`SELECT local_path AS localPath, remote_path AS remotePath, server, size, mtime_ms AS mtimeMs, sha256,
      completed_at AS completedAt FROM completed_files WHERE local_path = ?`),
    prune: db.prepare(`DELETE FROM uploads WHERE state = 'completed' AND id NOT IN
      (SELECT id FROM uploads WHERE state = 'completed' ORDER BY finished_at DESC, seq DESC LIMIT ?)`),
  };
}

function toRaw(row: UploadRow): Raw {
  return {
    id: row.id,
    seq: row.seq,
    local_path: row.localPath,
    remote_path: row.remotePath,
    bag_name: row.bagName,
    priority: row.priority,
    metadata: row.metadata === undefined ? null : JSON.stringify(row.metadata),
    replace: row.replace ? 1 : 0,
    state: row.state,
    bytes_total: row.bytesTotal,
    size: row.size ?? null,
    mtime_ms: row.mtimeMs ?? null,
    session_id: row.sessionId ?? null,
    session_server: row.sessionServer ?? null,
    chunk_size: row.chunkSize ?? null,
    sha256: row.sha256 ?? null,
    error_code: row.errorCode ?? null,
    last_error: row.lastError ?? null,
    queued_at: row.queuedAt,
    started_at: row.startedAt ?? null,
    finished_at: row.finishedAt ?? null,
  };
}

function fromRaw(raw: Raw): UploadRow {
  const optional = <T>(value: unknown): T | undefined =>
    value === null || value === undefined ? undefined : (value as T);
  let metadata: Record<string, unknown> | undefined;
  if (typeof raw.metadata === 'string') {
    try {
      metadata = JSON.parse(raw.metadata) as Record<string, unknown>;
    } catch {
      metadata = undefined;
    }
  }
  return {
    id: raw.id as string,
    seq: raw.seq as number,
    localPath: raw.local_path as string,
    remotePath: raw.remote_path as string,
    bagName: raw.bag_name as string,
    priority: raw.priority as number,
    metadata,
    replace: raw.replace === 1,
    state: raw.state as JournalState,
    bytesTotal: raw.bytes_total as number,
    size: optional<number>(raw.size),
    mtimeMs: optional<number>(raw.mtime_ms),
    sessionId: optional<string>(raw.session_id),
    sessionServer: optional<string>(raw.session_server),
    chunkSize: optional<number>(raw.chunk_size),
    sha256: optional<string>(raw.sha256),
    errorCode: optional<string>(raw.error_code),
    lastError: optional<string>(raw.last_error),
    queuedAt: raw.queued_at as string,
    startedAt: optional<string>(raw.started_at),
    finishedAt: optional<string>(raw.finished_at),
  };
}
