import Database from 'better-sqlite3';
import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import { syncFolder } from '../fs/sync-folder.js';
import { sqliteFailureOf } from './sqlite-failure.js';

/** A database file set aside because it could not be used. */
export interface SetAsideFile {
  /** The file that was damaged. */
  file: string;
  /** Where it went: `<file>.corrupt-<ISO time>` (its -wal and -shm files went along). */
  movedTo: string;
  /** Why: SQLite's message, or the schema problem found. */
  reason: string;
}

export interface OpenDatabaseOptions {
  /**
   * Checks that the file holds this program's schema (the tables it has: missingColumns, before
   * writing anything), then sets the connection up (pragmas, `CREATE TABLE IF NOT EXISTS`, ...).
   * Returns a reason when the file holds another schema (a missing column, a newer version), so
   * it is set aside; throws for any other failure.
   */
  setUp: (db: Database.Database) => string | undefined;
  /** Told when a damaged file was set aside and a new one started (log it loudly). */
  onSetAside: (event: SetAsideFile) => void;
  /** better-sqlite3 options (timeout). */
  timeout?: number;
}

/**
 * Opens a SQLite file that holds state the program can rebuild (a journal, a ledger: hints
 * whose truth is elsewhere), so that a damaged file never stops the program: garbage bytes, a
 * truncated file, malformed pages (an integrity check at open), or another schema (a missing
 * column, a newer version) make it set the file aside as `<name>.corrupt-<ISO time>` (with its
 * `-wal` and `-shm`, so the copy can still be opened for a post-mortem), report it through
 * `onSetAside`, and start a new one. Other failures (permissions, a full disk) are thrown: they
 * are not the file's fault, and moving it would lose good state.
 */
export function openRebuildableDatabase(file: string, options: OpenDatabaseOptions): Database.Database {
  for (let attempt = 0; ; attempt += 1) {
    let db: Database.Database | undefined;
    let reason: string | undefined;
    try {
      db = new Database(file, { timeout: options.timeout ?? 5000 });
      // Judged before anything is written to it: a file set aside is the file as it was found.
      reason = integrityProblem(db) ?? options.setUp(db);
      if (reason === undefined) return db;
    } catch (error) {
      if (sqliteFailureOf(error) !== 'damaged') {
        db?.close();
        throw error;
      }
      reason = (error as Error).message;
    }
    db?.close();
    if (attempt > 0) throw new Error(`${file} is still unusable after it was set aside: ${reason}`);
    const movedTo = setAside(file);
    options.onSetAside({ file, movedTo, reason });
  }
}

/** `PRAGMA quick_check`: undefined when the pages are sound, else SQLite's first complaint. */
function integrityProblem(db: Database.Database): string | undefined {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  const first = rows[0]?.quick_check;
  return first === 'ok' ? undefined : `integrity check failed: ${rows.map((row) => row.quick_check).join('; ')}`;
}

/**
 * The reason a table this program uses lacks columns it needs (another schema), if one does. A
 * table that does not exist yet is fine (it is created).
 */
export function schemaProblem(
  db: Database.Database,
  tables: Readonly<Record<string, readonly string[]>>,
): string | undefined {
  for (const [table, columns] of Object.entries(tables)) {
    const present = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name));
    if (present.size === 0) continue;
    const missing = columns.filter((column) => !present.has(column));
    if (missing.length > 0) return `table ${table} lacks column(s) ${missing.join(', ')} (another schema)`;
  }
  return undefined;
}

/** Renames `file` (and its -wal and -shm) to `<file>.corrupt-<ISO time>`, then syncs the folder. */
function setAside(file: string): string {
  const movedTo = `${file}.corrupt-${new Date().toISOString()}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, movedTo + suffix);
  }
  syncFolder(path.dirname(file));
  return movedTo;
}
