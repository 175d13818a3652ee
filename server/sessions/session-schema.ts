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
export const SCHEMA_VERSION = 3;

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
  // 2: the fleet view. `files.announce`: 0 announced, 1 pending (bag view and webhooks), 2 pending
  // for the bag view only: files stored before this version are indexed into bags at the next
  // start without firing webhooks for the past. Bags, webhook deliveries, per-uploader statistics.
  `ALTER TABLE files ADD COLUMN announce INTEGER NOT NULL DEFAULT 2;
  CREATE INDEX files_to_announce ON files (announce, completed_at) WHERE announce != 0;
  CREATE INDEX files_by_time ON files (completed_at);
  CREATE TABLE bags (
    uploader TEXT NOT NULL,
    folder TEXT NOT NULL,
    metadata_sha256 TEXT,
    expected TEXT,
    metadata_error TEXT,
    storage_identifier TEXT,
    missing TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    completed_at INTEGER,
    event_id TEXT,
    first_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (uploader, folder)
  ) WITHOUT ROWID;
  CREATE INDEX bags_by_update ON bags (updated_at);
  CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    hook TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT
  );
  CREATE INDEX deliveries_due ON webhook_deliveries (next_attempt_at);
  CREATE TABLE uploader_stats (
    uploader TEXT PRIMARY KEY,
    last_seen INTEGER,
    day TEXT NOT NULL,
    bytes_day INTEGER NOT NULL,
    files_day INTEGER NOT NULL,
    bytes_total INTEGER NOT NULL,
    files_total INTEGER NOT NULL
  ) WITHOUT ROWID;`,
  // 3: a chunk's offset says where its bytes are in the staged data for native chunks too (null:
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
