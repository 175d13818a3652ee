import type { CompletionResult, FileRecord, SessionRecord, SessionState } from './session-record.js';

/** A `sessions` row as SQLite returns it. */
export interface SessionRow {
  id: string;
  api: string;
  uploader: string;
  path: string;
  size: number;
  fingerprint: string | null;
  chunk_size: number | null;
  chunk_count: number;
  sha256_hint: string | null;
  md5_expected: string | null;
  metadata: string | null;
  replace_existing: number;
  compress: number;
  state: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  result: string | null;
}

/** A `files` row as SQLite returns it. */
export interface FileRow {
  uploader: string;
  path: string;
  size: number;
  sha256: string;
  md5: string | null;
  fingerprint: string;
  completed_at: number;
  metadata: string | null;
  compressed_size: number | null;
  session_id: string | null;
}

export interface ChunkRow {
  idx: number;
  size: number;
  crc: number;
  offset: number | null;
}

export function sessionRow(record: SessionRecord): SessionRow {
  return {
    id: record.id,
    api: record.api,
    uploader: record.uploader,
    path: record.path,
    size: record.size,
    fingerprint: record.fingerprint,
    chunk_size: record.chunkSize,
    chunk_count: record.chunkCount,
    sha256_hint: record.sha256Hint,
    md5_expected: record.md5Expected,
    metadata: record.metadata ? JSON.stringify(record.metadata) : null,
    replace_existing: record.replace ? 1 : 0,
    compress: record.compress ? 1 : 0,
    state: record.state,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    expires_at: record.expiresAt,
    result: record.result ? JSON.stringify(record.result) : null,
  };
}

export function toSession(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    api: row.api as SessionRecord['api'],
    uploader: row.uploader,
    path: row.path,
    size: row.size,
    fingerprint: row.fingerprint,
    chunkSize: row.chunk_size,
    chunkCount: row.chunk_count,
    sha256Hint: row.sha256_hint,
    md5Expected: row.md5_expected,
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, unknown>) : null,
    replace: row.replace_existing === 1,
    compress: row.compress === 1,
    state: row.state as SessionState,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    result: row.result ? (JSON.parse(row.result) as CompletionResult) : null,
  };
}

export function fileRow(file: FileRecord): FileRow {
  return {
    uploader: file.uploader,
    path: file.path,
    size: file.size,
    sha256: file.sha256,
    md5: file.md5,
    fingerprint: file.fingerprint,
    completed_at: file.completedAt,
    metadata: file.metadata ? JSON.stringify(file.metadata) : null,
    compressed_size: file.compressedSize,
    session_id: file.sessionId,
  };
}

export function toFile(row: FileRow): FileRecord {
  return {
    uploader: row.uploader,
    path: row.path,
    size: row.size,
    sha256: row.sha256,
    md5: row.md5,
    fingerprint: row.fingerprint,
    completedAt: row.completed_at,
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, unknown>) : null,
    compressedSize: row.compressed_size,
    sessionId: row.session_id,
  };
}
