import type { BagRecord, WebhookDelivery } from '../sessions/fleet-records.js';
import type { FileRecord } from '../sessions/session-record.js';
import { eventId } from './event-ids.js';

/** The JSON body of every webhook POST. */
export interface WebhookBody<T extends string, D> {
  /** Stable event id: the same for every attempt; receivers deduplicate on it. */
  id: string;
  type: T;
  /** ISO 8601: when the event happened. */
  occurredAt: string;
  data: D;
}

export interface FileCompletedData {
  uploader: string;
  /** Relative to the uploader's folder; stored at `completed/<uploader>/<path>`. */
  path: string;
  size: number;
  sha256: string;
  completedAt: string;
  /** The bag folder the file belongs to, or null. */
  bag: string | null;
  metadata: Record<string, unknown> | null;
}

export interface BagCompletedData {
  uploader: string;
  /** The bag folder, relative to the uploader's folder. */
  bag: string;
  storageIdentifier: string | null;
  files: { path: string; size: number; sha256: string }[];
  bytes: number;
  completedAt: string;
}

/** The id of a file's completion: one per content stored at a path. */
export function fileEventId(file: FileRecord): string {
  return eventId('file.completed', file.uploader, file.path, file.sha256, file.completedAt);
}

/** The id of a bag's completion: one per bag folder and metadata.yaml content. */
export function bagEventId(uploader: string, folder: string, metadataSha256: string): string {
  return eventId('bag.completed', uploader, folder, metadataSha256);
}

export function fileDelivery(file: FileRecord, bag: string | undefined, now: number): WebhookDelivery {
  const id = fileEventId(file);
  const body: WebhookBody<'file.completed', FileCompletedData> = {
    id,
    type: 'file.completed',
    occurredAt: new Date(file.completedAt).toISOString(),
    data: {
      uploader: file.uploader,
      path: file.path,
      size: file.size,
      sha256: file.sha256,
      completedAt: new Date(file.completedAt).toISOString(),
      bag: bag ?? null,
      metadata: file.metadata,
    },
  };
  return delivery(id, 'file', body, now);
}

export function bagCompletedData(bag: BagRecord, files: readonly FileRecord[]): BagCompletedData {
  return {
    uploader: bag.uploader,
    bag: bag.folder,
    storageIdentifier: bag.storageIdentifier,
    files: files.map((file) => ({ path: file.path, size: file.size, sha256: file.sha256 })),
    bytes: bag.bytes,
    completedAt: new Date(bag.completedAt ?? bag.updatedAt).toISOString(),
  };
}

export function bagDelivery(id: string, data: BagCompletedData, now: number): WebhookDelivery {
  const body: WebhookBody<'bag.completed', BagCompletedData> = {
    id,
    type: 'bag.completed',
    occurredAt: data.completedAt,
    data,
  };
  return delivery(id, 'bag', body, now);
}

function delivery(id: string, hook: 'file' | 'bag', body: unknown, now: number): WebhookDelivery {
  return { id, hook, body: JSON.stringify(body), createdAt: now, attempts: 0, nextAttemptAt: now, lastError: null };
}
