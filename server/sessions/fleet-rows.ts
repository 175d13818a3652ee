import type { BagRecord, UploaderStats, WebhookDelivery, WebhookHook } from './fleet-records.js';

/**
 * The fleet tables' rows as both session stores return them (same columns in SQLite and
 * PostgreSQL; BIGINT arrives as numbers through the pool's type parsers), and their records.
 */

/** A `bags` row; `complete` is 0/1 in SQLite and a boolean in PostgreSQL. */
export interface BagRow {
  uploader: string;
  folder: string;
  metadata_sha256: string | null;
  expected: string | null;
  metadata_error: string | null;
  storage_identifier: string | null;
  missing: string;
  files: number;
  bytes: number;
  complete: number | boolean;
  completed_at: number | null;
  event_id: string | null;
  first_at: number;
  updated_at: number;
}

/** A `webhook_deliveries` row. */
export interface DeliveryRow {
  id: string;
  hook: string;
  body: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
}

/** An `uploader_stats` row. */
export interface StatsRow {
  uploader: string;
  last_seen: number | null;
  day: string;
  bytes_day: number;
  files_day: number;
  bytes_total: number;
  files_total: number;
}

export function toBag(row: BagRow): BagRecord {
  return {
    uploader: row.uploader,
    folder: row.folder,
    metadataSha256: row.metadata_sha256,
    expected: row.expected === null ? null : (JSON.parse(row.expected) as string[]),
    metadataError: row.metadata_error,
    storageIdentifier: row.storage_identifier,
    missing: JSON.parse(row.missing) as string[],
    files: row.files,
    bytes: row.bytes,
    complete: row.complete === true || row.complete === 1,
    completedAt: row.completed_at,
    eventId: row.event_id,
    firstAt: row.first_at,
    updatedAt: row.updated_at,
  };
}

export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    hook: row.hook as WebhookHook,
    body: row.body,
    createdAt: row.created_at,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
  };
}

export function toUploaderStats(row: StatsRow): UploaderStats {
  return {
    uploader: row.uploader,
    lastSeen: row.last_seen,
    day: row.day,
    bytesDay: row.bytes_day,
    filesDay: row.files_day,
    bytesTotal: row.bytes_total,
    filesTotal: row.files_total,
  };
}
