/**
 * The journal's tables. Version 1. The journal is a hint: after a restart the server's answer
 * to create-or-resume is the truth about which chunks it holds.
 */
export const JOURNAL_FILE = 'journal.sqlite';
export const LOCK_FILE = 'agent.lock';
export const SCHEMA_VERSION = 1;

export const schemaSql = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per upload the engine was asked for. state: queued (pending, whatever the engine is
-- doing with it), completed, failed.
CREATE TABLE IF NOT EXISTS uploads (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  local_path TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  bag_name TEXT NOT NULL,
  priority INTEGER NOT NULL,
  metadata TEXT,
  replace INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  bytes_total INTEGER NOT NULL DEFAULT 0,
  -- The file version (size, mtime) the server session was made for, and the session.
  size INTEGER,
  mtime_ms REAL,
  session_id TEXT,
  session_server TEXT,
  chunk_size INTEGER,
  sha256 TEXT,
  error_code TEXT,
  last_error TEXT,
  queued_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT
);
CREATE INDEX IF NOT EXISTS uploads_by_state ON uploads (state, seq);

-- Chunks the server acknowledged, per upload (a hint for status and resume accounting).
CREATE TABLE IF NOT EXISTS acked_chunks (
  upload_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  PRIMARY KEY (upload_id, idx)
) WITHOUT ROWID;

-- Files the server verified, by local path: lets a re-queued unchanged file be recognised
-- without reading it, and lets the watcher skip files already uploaded.
CREATE TABLE IF NOT EXISTS completed_files (
  local_path TEXT PRIMARY KEY,
  remote_path TEXT NOT NULL,
  server TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ms REAL NOT NULL,
  sha256 TEXT NOT NULL,
  completed_at TEXT NOT NULL
);
`;

/** The columns the journal's code reads and writes, per table: a file without them is another schema. */
export const schemaColumns: Readonly<Record<string, readonly string[]>> = {
  meta: ['key', 'value'],
  uploads: [
    'id',
    'seq',
    'local_path',
    'remote_path',
    'bag_name',
    'priority',
    'metadata',
    'replace',
    'state',
    'bytes_total',
    'size',
    'mtime_ms',
    'session_id',
    'session_server',
    'chunk_size',
    'sha256',
    'error_code',
    'last_error',
    'queued_at',
    'started_at',
    'finished_at',
  ],
  acked_chunks: ['upload_id', 'idx'],
  completed_files: ['local_path', 'remote_path', 'server', 'size', 'mtime_ms', 'sha256', 'completed_at'],
};
