/**
 * What a failed SQLite (better-sqlite3) or file-system call means for the program that keeps
 * its state in the file:
 * - `full`: the disk (or the quota) is full: SQLITE_FULL, ENOSPC, EDQUOT. Nothing was written;
 *   the same call succeeds once space comes back.
 * - `damaged`: the file is not a usable database (garbage, truncated, malformed pages):
 *   SQLITE_CORRUPT*, SQLITE_NOTADB. It will not get better by itself.
 * - `other`: anything else (permissions, a read-only file system, I/O errors).
 */
export type SqliteFailure = 'full' | 'damaged' | 'other';

export function sqliteFailureOf(error: unknown): SqliteFailure {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'other';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'damaged';
  return 'other';
}
