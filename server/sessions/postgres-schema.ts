import type pg from 'pg';
import { UploadError } from '../../common/errors/upload-error.js';

/**
 * The PostgreSQL schema of the session store shared by server replicas, and its versions. The
 * version is kept in `meta` (`schema_version`). Each replica runs the migrations above the
 * database's version at start-up, in one transaction under an advisory lock, so that replicas
 * starting together migrate once and a database is never left half-migrated; a database
 * written by a newer version is refused rather than guessed at.
 */
export const POSTGRES_SCHEMA_VERSION = 2;

/** Taken (transaction-scoped) while migrating: one replica at a time. */
const MIGRATION_LOCK = 7_364_202_611;

/** Migration n takes the database from version n-1 to n. Append only; never edit a released one. */
const MIGRATIONS: readonly string[] = [
  // 1: sessions with their saved prefix hash, chunks, the file index, shared rate-limit counters.
  `CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    uploader TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    fingerprint TEXT,
    chunk_size BIGINT,
    chunk_count INTEGER NOT NULL,
    sha256_hint TEXT,
    md5_expected TEXT,
    metadata TEXT,
    replace_existing BOOLEAN NOT NULL DEFAULT FALSE,
    compress BOOLEAN NOT NULL DEFAULT FALSE,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    result TEXT,
    prefix_chunks INTEGER NOT NULL DEFAULT 0,
    prefix_bytes BIGINT NOT NULL DEFAULT 0,
    prefix_sha256 BYTEA,
    prefix_md5 BYTEA
  );
  CREATE INDEX sessions_by_path ON sessions (uploader, path, state);
  CREATE INDEX sessions_by_expiry ON sessions (expires_at);
  CREATE UNIQUE INDEX one_open_session_per_file ON sessions (uploader, path, size, fingerprint)
    WHERE api = 'native' AND state <> 'complete';
  CREATE TABLE chunks (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    size BIGINT NOT NULL,
    crc BIGINT NOT NULL,
    "offset" BIGINT,
    PRIMARY KEY (session_id, idx)
  );
  CREATE TABLE files (
    uploader TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    md5 TEXT,
    fingerprint TEXT NOT NULL,
    completed_at BIGINT NOT NULL,
    metadata TEXT,
    compressed_size BIGINT,
    session_id TEXT,
    PRIMARY KEY (uploader, path)
  );
  CREATE INDEX files_by_time ON files (uploader, completed_at DESC, path);
  CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    hits INTEGER NOT NULL,
    reset_at BIGINT NOT NULL
  );`,
  // 2: the fleet view, as the SQLite schema's migration 2. `files.announce`: 0 announced, 1 pending
  // (bag view and webhooks), 2 pending for the bag view only: files stored before this version are
  // indexed into bags at the next start without firing webhooks for the past. Bags, webhook
  // deliveries, per-uploader statistics.
  `ALTER TABLE files ADD COLUMN announce INTEGER NOT NULL DEFAULT 2;
  CREATE INDEX files_to_announce ON files (completed_at, uploader, path) WHERE announce <> 0;
  CREATE INDEX files_by_completion ON files (completed_at DESC, uploader, path);
  CREATE INDEX files_in_folder ON files (uploader, path COLLATE "C");
  CREATE TABLE bags (
    uploader TEXT NOT NULL,
    folder TEXT NOT NULL,
    metadata_sha256 TEXT,
    expected TEXT,
    metadata_error TEXT,
    storage_identifier TEXT,
    missing TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes BIGINT NOT NULL,
    complete BOOLEAN NOT NULL,
    completed_at BIGINT,
    event_id TEXT,
    first_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (uploader, folder)
  );
  CREATE INDEX bags_by_update ON bags (updated_at DESC, uploader, folder);
  CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    hook TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT
  );
  CREATE INDEX deliveries_due ON webhook_deliveries (next_attempt_at);
  CREATE INDEX deliveries_by_hook ON webhook_deliveries (hook);
  CREATE TABLE uploader_stats (
    uploader TEXT PRIMARY KEY,
    last_seen BIGINT,
    day TEXT NOT NULL,
    bytes_day BIGINT NOT NULL,
    files_day INTEGER NOT NULL,
    bytes_total BIGINT NOT NULL,
    files_total BIGINT NOT NULL
  );`,
];

/** Creates or migrates the schema to POSTGRES_SCHEMA_VERSION; `where` names the database (no password) in errors. */
export async function migratePostgres(client: pg.ClientBase, where: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const { rows } = await client.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`);
    const stored = rows[0]?.value;
    const version = stored === undefined ? 0 : Number(stored);
    if (!Number.isInteger(version) || version < 0)
      throw new UploadError(
        'STATE_DIR',
        `The database ${where} has an unreadable schema version ${JSON.stringify(stored)}`,
      );
    if (version > POSTGRES_SCHEMA_VERSION)
      throw new UploadError(
        'STATE_DIR',
        `The database ${where} was written by a newer version of the server (schema ${version}; ` +
          `this one knows up to ${POSTGRES_SCHEMA_VERSION}): upgrade the server`,
      );
    for (const migration of MIGRATIONS.slice(version, POSTGRES_SCHEMA_VERSION)) await client.query(migration);
    if (version !== POSTGRES_SCHEMA_VERSION)
      await client.query(
        `INSERT INTO meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(POSTGRES_SCHEMA_VERSION)],
      );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
