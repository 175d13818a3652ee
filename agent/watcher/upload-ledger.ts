import path from 'node:path';
import Database from 'better-sqlite3';

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
 * The watcher's record of verified files (SQLite in the state directory, next to the engine's
 * journal). It makes a restart skip files already uploaded without asking the server, lets the
 * after-upload policy and the disk guard touch only verified files, and feeds `status`. The
 * engine's journal stays the record of uploads in progress; this one only ever holds files
 * whose full SHA-256 the server confirmed.
 *
 * Durability: WAL with `synchronous = NORMAL` (no fsync per verified file; a crash of the
 * process loses nothing). A power loss can lose the last rows; that is safe because the
 * engine's journal already holds each of these files as verified, durably, before the agent is
 * told (see Journal): a restart still skips them (isUploaded also asks the journal), the disk
 * guard only ever deletes files it finds here (a lost row means a file kept, never one deleted
 * unverified), and after-upload acts on the journal's word. What a lost row costs is the inode
 * that tells a file rewritten in place from a new file under the same name: such a file is then
 * sent without replace, and the server refuses it (FILE_EXISTS) rather than lose anything.
 */
export class UploadLedger {
  #db: Database.Database;
  #get: Database.Statement<[string], LedgerEntry>;
  #put: Database.Statement<[LedgerEntry]>;
  #recent: Database.Statement<[number], LedgerEntry>;
  #oldest: Database.Statement<[], LedgerEntry>;

  constructor(stateDir: string) {
    this.#db = new Database(path.join(stateDir, 'uploaded-files.sqlite'));
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS uploaded_files (
      local_path TEXT PRIMARY KEY,
      remote_path TEXT NOT NULL,
      size INTEGER NOT NULL,
      mtime_ms REAL NOT NULL,
      ino INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      verified_at INTEGER NOT NULL
    )`);
    const columns =
      'local_path AS localPath, remote_path AS remotePath, size, ' +
      'mtime_ms AS mtimeMs, ino, sha256, verified_at AS verifiedAt';
    this.#get = this.#db.prepare(`SELECT ${columns} FROM uploaded_files WHERE local_path = ?`);
    this.#put = this.#db.prepare(`INSERT OR REPLACE INTO uploaded_files
      (local_path, remote_path, size, mtime_ms, ino, sha256, verified_at)
      VALUES (@localPath, @remotePath, @size, @mtimeMs, @ino, @sha256, @verifiedAt)`);
    this.#recent = this.#db.prepare(`SELECT ${columns} FROM uploaded_files ORDER BY verified_at DESC LIMIT ?`);
    // Files written in one burst share an mtime (the kernel's clock is coarse): among them, splits
    // in index order (shorter path first: _9 before _10) and metadata.yaml last, not the order in
    // which the server verified them (two uploads run at once).
    this.#oldest = this.#db.prepare(
      `SELECT ${columns} FROM uploaded_files ORDER BY mtime_ms ASC, local_path ` +
        `LIKE '%/metadata.yaml' ASC, length(local_path) ASC, local_path ASC`,
    );
  }

  get(localPath: string): LedgerEntry | undefined {
    return this.#get.get(localPath);
  }

  /** True when this exact version (size and mtime) of the file was verified. */
  isVerified(localPath: string, stat: { size: number; mtimeMs: number }): boolean {
    const entry = this.get(localPath);
    return entry !== undefined && entry.size === stat.size && entry.mtimeMs === stat.mtimeMs;
  }

  record(entry: LedgerEntry): void {
    this.#put.run(entry);
  }

  recent(limit: number): LedgerEntry[] {
    return this.#recent.all(limit);
  }

  /** Every entry, oldest recording (mtime) first: the disk guard's deletion order. */
  *oldestFirst(): Generator<LedgerEntry> {
    yield* this.#oldest.iterate();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
