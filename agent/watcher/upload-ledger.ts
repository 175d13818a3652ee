import path from 'node:path';
import type Database from 'better-sqlite3';
import { UploadError } from '../../common/errors/upload-error.js';
import { openRebuildableDatabase, schemaProblem, type SetAsideFile } from '../../common/sqlite/open-database.js';
import { sqliteFailureOf } from '../../common/sqlite/sqlite-failure.js';

/** One file version the server verified. */
export interface LedgerEntry {
  /** Absolute local path at upload time. */
  localPath: string;
  remotePath: string;
  size: number;
  mtimeMs: number;
  /** The inode, to tell a modified file from a new file at the same path. */
  ino: number;
  sha256: string;
  /** Date.now() of the verification. */
  verifiedAt: number;
}

/**
 * An after-upload action (delete or move) that was decided and must happen, written durably
 * before it is done and removed once it is (after-upload-intents.ts). The version is the one the
 * server verified: a file whose version differs is never touched.
 */
export interface AfterUploadIntent {
  localPath: string;
  action: 'delete' | 'move';
  /** For `move`: where the file goes. */
  destination: string | undefined;
  remotePath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
  /** A bag's metadata.yaml: its emptied bag folder may go too. */
  completesBag: boolean;
  /** The watch root (never removed). */
  root: string;
  /** Date.now() when it was decided. */
  createdAt: number;
}

export const LEDGER_FILE = 'uploaded-files.sqlite';

const ENTRY_COLUMNS = ['local_path', 'remote_path', 'size', 'mtime_ms', 'ino', 'sha256', 'verified_at'];
const INTENT_COLUMNS = [
  'local_path',
  'action',
  'destination',
  'remote_path',
  'size',
  'mtime_ms',
  'ino',
  'sha256',
  'completes_bag',
  'root',
  'created_at',
];

export interface LedgerOptions {
  /** A damaged ledger was set aside and a new one started (the caller logs it loudly). */
  onSetAside?: (event: SetAsideFile) => void;
}

/**
 * The watcher's record of verified files (SQLite in the state directory, next to the engine's
 * journal). It makes a restart skip files already uploaded without asking the server, lets the
 * after-upload policy and the disk guard touch only verified files, and feeds `status`. The
 * engine's journal stays the record of uploads in progress; this one only ever holds files
 * whose full SHA-256 the server confirmed. It also holds the after-upload intents.
 *
 * Durability: WAL with `synchronous = NORMAL` (no fsync per verified file; a crash of the
 * process loses nothing). A power loss can lose the last rows; that is safe because the
 * engine's journal already holds each of these files as verified, durably, before the agent is
 * told (see Journal): a restart still skips them (isUploaded also asks the journal), the disk
 * guard only ever deletes files it finds here (a lost row means a file kept, never one deleted
 * unverified), and after-upload acts on the journal's word. What a lost row costs is the inode
 * that tells a file rewritten in place from a new file under the same name: such a file is then
 * sent without replace, and the server refuses it (FILE_EXISTS) rather than lose anything. An
 * intent is written with a full fsync (which makes the rows before it durable too).
 *
 * A damaged file (garbage, truncated, another schema) is set aside as
 * `uploaded-files.sqlite.corrupt-<time>` and a new one started: what it knew is found again in
 * the engine's journal and, failing that, from the server (which answers "already complete").
 * A write that meets a full disk throws STATE_DISK_FULL; any other failure STATE_DIR.
 */
export class UploadLedger {
  readonly file: string;
  #db: Database.Database;
  #get: Database.Statement<[string], LedgerEntry>;
  #put: Database.Statement<[LedgerEntry]>;
  #recent: Database.Statement<[number], LedgerEntry>;
  #oldest: Database.Statement<[], LedgerEntry>;
  #intents: Database.Statement<[], AfterUploadIntent>;
  #addIntent: Database.Statement<[Record<string, unknown>]>;
  #removeIntent: Database.Statement<[string]>;

  constructor(stateDir: string, options: LedgerOptions = {}) {
    this.file = path.join(stateDir, LEDGER_FILE);
    try {
      this.#db = openRebuildableDatabase(this.file, {
        setUp: setUpLedger,
        onSetAside: options.onSetAside ?? (() => undefined),
      });
    } catch (error) {
      throw this.#failure('open', error);
    }
    const db = this.#db;
    const columns =
      'local_path AS localPath, remote_path AS remotePath, size, ' +
      'mtime_ms AS mtimeMs, ino, sha256, verified_at AS verifiedAt';
    this.#get = db.prepare(`SELECT ${columns} FROM uploaded_files WHERE local_path = ?`);
    this.#put = db.prepare(`INSERT OR REPLACE INTO uploaded_files
      (local_path, remote_path, size, mtime_ms, ino, sha256, verified_at)
      VALUES (@localPath, @remotePath, @size, @mtimeMs, @ino, @sha256, @verifiedAt)`);
    this.#recent = db.prepare(`SELECT ${columns} FROM uploaded_files ORDER BY verified_at DESC LIMIT ?`);
    // Files written in one burst share an mtime (the kernel's clock is coarse): among them, splits
    // in index order (shorter path first: _9 before _10) and metadata.yaml last, not the order in
    // which the server verified them (two uploads run at once).
    this.#oldest = db.prepare(
      `SELECT ${columns} FROM uploaded_files ORDER BY mtime_ms ASC, local_path ` +
        `LIKE '%/metadata.yaml' ASC, length(local_path) ASC, local_path ASC`,
    );
    this.#intents = db.prepare(`SELECT local_path AS localPath, action, destination, remote_path AS remotePath, size,
      mtime_ms AS mtimeMs, ino, sha256, completes_bag = 1 AS completesBag, root, created_at AS createdAt
      FROM after_upload_intents ORDER BY created_at, local_path`);
    this.#addIntent =
      db.prepare(`INSERT OR REPLACE INTO after_upload_intents (local_path, action, destination, remote_path, size,
      mtime_ms, ino, sha256, completes_bag, root, created_at) VALUES (@localPath, @action, @destination, @remotePath,
      @size, @mtimeMs, @ino, @sha256, @completesBag, @root, @createdAt)`);
    this.#removeIntent = db.prepare('DELETE FROM after_upload_intents WHERE local_path = ?');
  }

  get(localPath: string): LedgerEntry | undefined {
    return this.#use('read', () => this.#get.get(localPath));
  }

  /** True when this exact version (size and mtime) of the file was verified. */
  isVerified(localPath: string, stat: { size: number; mtimeMs: number }): boolean {
    const entry = this.get(localPath);
    return entry !== undefined && entry.size === stat.size && entry.mtimeMs === stat.mtimeMs;
  }

  record(entry: LedgerEntry): void {
    this.#use('record a verified file', () => this.#put.run(entry));
  }

  recent(limit: number): LedgerEntry[] {
    return this.#use('read', () => this.#recent.all(limit));
  }

  /** Every entry, oldest recording (mtime) first: the disk guard's deletion order. */
  *oldestFirst(): Generator<LedgerEntry> {
    yield* this.#oldest.iterate();
  }

  /** Writes an after-upload intent durably (fsync): it survives a power loss from here on. */
  addIntent(intent: AfterUploadIntent): void {
    this.#use('record an after-upload action', () => {
      this.#db.pragma('synchronous = FULL');
      try {
        this.#addIntent.run({
          ...intent,
          destination: intent.destination ?? null,
          completesBag: intent.completesBag ? 1 : 0,
        });
      } finally {
        this.#db.pragma('synchronous = NORMAL');
      }
    });
  }

  /** The after-upload actions decided and not known to be done, oldest first. */
  intents(): AfterUploadIntent[] {
    return this.#use('read', () =>
      this.#intents.all().map((row) => ({
        ...row,
        destination: row.destination ?? undefined,
        completesBag: Boolean(row.completesBag),
      })),
    );
  }

  /** The action is done and durable (its folders fsynced): forget it. */
  removeIntent(localPath: string): void {
    this.#use('forget an after-upload action', () => this.#removeIntent.run(localPath));
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #use<T>(what: string, action: () => T): T {
    try {
      return action();
    } catch (error) {
      throw this.#failure(what, error);
    }
  }

  #failure(what: string, error: unknown): UploadError {
    if (error instanceof UploadError) return error;
    if (sqliteFailureOf(error) === 'full')
      return new UploadError(
        'STATE_DISK_FULL',
        `The ledger of uploaded files ${this.file} cannot be written (${what}): ` +
          'the disk of the state directory is full',
        { cause: error },
      );
    return new UploadError(
      'STATE_DIR',
      `The ledger of uploaded files ${this.file} failed (${what}): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function setUpLedger(db: Database.Database): string | undefined {
  const problem = schemaProblem(db, { uploaded_files: ENTRY_COLUMNS, after_upload_intents: INTENT_COLUMNS });
  if (problem) return problem;
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS uploaded_files (
    local_path TEXT PRIMARY KEY,
    remote_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ms REAL NOT NULL,
    ino INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    verified_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS after_upload_intents (
    local_path TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    destination TEXT,
    remote_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ms REAL NOT NULL,
    ino INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    completes_bag INTEGER NOT NULL,
    root TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`);
  return undefined;
}
