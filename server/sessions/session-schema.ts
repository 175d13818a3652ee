import type Database from 'better-sqlite3';
import { UploadError } from '../../common/errors/upload-error.js';
import { present } from '../../common/errors/present.js';

/**
 * The session database's tables and their versions. The version is kept in `meta`
 * (`schema_version`); a database without one was written before versions were recorded and is
 * version 0. Opening runs every migration above the file's version in one transaction, so a
 * database is never left half-migrated, and refuses a file written by a newer version rather
 * than guessing at its meaning.
 */
export const SCHEMA_VERSION = 2;

/** The tables as version 0 had them; migrations take them from there. */
const BASE_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  api TEXT NOT NULL,
  uploader TEXT NOT NULL,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  fingerprint TEXT,
  chunk_size INTEGER,
  chunk_count INTEGER NOT NULL,
  sha256_hint TEXT,
  md5_expected TEXT,
  metadata TEXT,
  replace_existing INTEGER NOT NULL DEFAULT 0,
  compress INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  result TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_path ON sessions (uploader, path, state);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
CREATE TABLE IF NOT EXISTS chunks (
  session_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  size INTEGER NOT NULL,
  crc INTEGER NOT NULL,
  offset INTEGER,
  PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
  uploader TEXT NOT NULL,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  md5 TEXT,
  fingerprint TEXT NOT NULL,
  completed_at INTEGER NOT NULL,
  metadata TEXT,
  compressed_size INTEGER,
  session_id TEXT,
  PRIMARY KEY (uploader, path)
) WITHOUT ROWID;
`;

/** Migration n takes a database from version n-1 to n. Append only; never edit a released one. */
const MIGRATIONS: readonly string[] = [
  // 1: the Python dashboard's API is called the legacy API: its sessions' `api` value follows.
  `UPDATE sessions SET api = 'legacy' WHERE api = 'seed';`,
  // 2: a chunk's offset says where its bytes are in the staged data for native chunks too (null:
  // still in its spool, which only a backend that cannot read chunks back uses).
  `UPDATE chunks SET offset = idx * (SELECT chunk_size FROM sessions WHERE sessions.id = chunks.session_id)
   WHERE offset IS NULL AND session_id IN (SELECT id FROM sessions WHERE api = 'native');`,
];

/** Creates or migrates the schema of an open database to SCHEMA_VERSION; `file` names it in errors. */
export function migrateSchema(db: Database.Database, file: string): void {
  db.exec(BASE_SCHEMA);
  const stored = db.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get() as string | undefined;
  const version = stored === undefined ? 0 : Number(stored);
  if (!Number.isInteger(version) || version < 0) {
    throw new UploadError(
      'STATE_DIR',
      `The session database ${file} has an unreadable schema version ${JSON.stringify(stored)}`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new UploadError(
      'STATE_DIR',
      `The session database ${file} was written by a newer version of the server ` +
        `(schema ${version}; this one knows up to ${SCHEMA_VERSION}): upgrade the server`,
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let next = version + 1; next <= SCHEMA_VERSION; next += 1) {
      db.exec(present(MIGRATIONS[next - 1], `the migration to schema version ${next}`));
    }
    db.prepare(
      `INSERT INTO meta (key, value) VALUES ('schema_version', ` +
        `?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    ).run(String(SCHEMA_VERSION));
  })();
}
