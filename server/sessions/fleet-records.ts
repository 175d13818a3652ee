import type { FileRecord } from './session-record.js';

/**
 * What the session store keeps for the fleet view besides sessions and files: bags, webhook
 * deliveries waiting to be sent, and per-uploader statistics. Times are epoch milliseconds.
 */

/** A bag folder (rosbag2: a folder of splits and its metadata.yaml) of one uploader. */
export interface BagRecord {
  uploader: string;
  /** The folder's relative path under the uploader, e.g. `2024-05-01/run1`. */
  folder: string;
  /** The SHA-256 of the stored metadata.yaml, or null until it is stored. */
  metadataSha256: string | null;
  /** File names (in the folder) that metadata.yaml lists; null until it is stored, or when it cannot be read. */
  expected: string[] | null;
  /** Why the stored metadata.yaml could not be read, or null. */
  metadataError: string | null;
  /** rosbag2's storage plugin (`mcap`, `sqlite3`), from metadata.yaml. */
  storageIdentifier: string | null;
  /** Listed files not verified yet (empty until metadata.yaml is stored). */
  missing: string[];
  /** Verified files in the folder (listed or not), and their bytes. */
  files: number;
  bytes: number;
  /** metadata.yaml and every file it lists are verified. */
  complete: boolean;
  /** When the bag last became complete. */
  completedAt: number | null;
  /** The id of the bag-complete event of the latest completion (stable, for webhook receivers). */
  eventId: string | null;
  firstAt: number;
  updatedAt: number;
}

/** Which bags to list (most recently changed first). */
export interface BagQuery {
  uploader?: string | undefined;
  complete?: boolean | undefined;
  limit: number;
}

/** The bags of the store, counted, for metrics. */
export interface BagCounts {
  complete: number;
  incomplete: number;
  /** The oldest `updatedAt` of an incomplete bag (its last progress), or null when none is incomplete. */
  oldestIncompleteUpdate: number | null;
}

export type WebhookHook = 'file' | 'bag';

/** One event waiting to be POSTed to a webhook (at least once). */
export interface WebhookDelivery {
  /** The event's id: stable across retries and restarts. */
  id: string;
  hook: WebhookHook;
  /** The JSON body to send. */
  body: string;
  createdAt: number;
  /** Attempts made so far. */
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
}

/** A stored file whose announcement (bag view, hooks) is pending. */
export interface FileToAnnounce extends FileRecord {
  /** False for files stored before announcements existed: indexed into bags, no webhooks. */
  hooks: boolean;
}

/** An announcement, recorded atomically (see SessionStore.announce). */
export interface Announcement {
  /** The file announced, as it was stored (a file replaced since is not announced by this). */
  file: { uploader: string; path: string; sha256: string };
  /** The bag record to write (the file's folder), if it is in a bag. */
  bag: BagRecord | undefined;
  /** Deliveries to queue (an id already queued is ignored). */
  deliveries: WebhookDelivery[];
}

/** What an uploader did, kept across restarts. `day` is the server's local date (YYYY-MM-DD) the *Day counts are of. */
export interface UploaderStats {
  uploader: string;
  lastSeen: number | null;
  day: string;
  bytesDay: number;
  filesDay: number;
  bytesTotal: number;
  filesTotal: number;
}

/** An unfinished session, summed up for the list of uploads in progress. */
export interface OpenSessionSummary {
  id: string;
  api: 'native' | 'legacy';
  uploader: string;
  path: string;
  size: number;
  receivedBytes: number;
  createdAt: number;
  updatedAt: number;
}
