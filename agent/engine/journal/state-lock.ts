import Database from 'better-sqlite3';
import { truncateSync } from 'node:fs';
import path from 'node:path';
import { UploadError } from '../../../common/errors/upload-error.js';
import { sqliteFailureOf } from '../../../common/sqlite/sqlite-failure.js';
import { LOCK_FILE } from './journal-schema.js';

/**
 * One engine per state directory. The lock is an exclusive SQLite transaction on a small lock
 * file: SQLite takes it with POSIX advisory locks, which the kernel drops when the process
 * dies (kill -9, power loss), so a stale lock never needs cleaning up, and a second engine in
 * the same process is refused as well. The journal itself stays readable by others (for
 * example `ros2-upload-agent status` while the agent runs).
 */
export class StateLock {
  #db: Database.Database | undefined;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  static acquire(stateDir: string): StateLock {
    const file = path.join(stateDir, LOCK_FILE);
    try {
      return StateLock.#acquire(stateDir, file);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      if (sqliteFailureOf(cause) !== 'damaged') throw error;
      // The lock file holds no data (it is empty), and a damaged one cannot be held by anyone (a
      // holder's lock makes us wait before the file is read): emptied in place (the same inode,
      // which the kernel's locks are on), it works again.
      truncateSync(file, 0);
      return StateLock.#acquire(stateDir, file);
    }
  }

  static #acquire(stateDir: string, file: string): StateLock {
    let db: Database.Database;
    try {
      db = new Database(file, { timeout: 0 });
    } catch (error) {
      throw new UploadError('STATE_DIR', `Cannot open the lock file ${file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        throw new UploadError(
          'STATE_DIR_LOCKED',
          `Another upload agent is using the state directory ${stateDir} (lock ${file} is held)`,
          { cause: error },
        );
      }
      throw new UploadError('STATE_DIR', `Cannot lock the state directory ${stateDir}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return new StateLock(db);
  }

  release(): void {
    const db = this.#db;
    this.#db = undefined;
    if (!db) return;
    try {
      db.exec('ROLLBACK');
    } catch {
      // already released
    }
    db.close();
  }
}
