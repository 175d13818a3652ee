import type {
  Announcement,
  BagCounts,
  BagQuery,
  BagRecord,
  FileToAnnounce,
  OpenSessionSummary,
  UploaderStats,
  WebhookDelivery,
  WebhookHook,
} from './fleet-records.js';
import type { FileRecord } from './session-record.js';

/**
 * What the fleet view keeps next to the sessions, in the same database (SQLite: sqlite-fleet.ts;
 * PostgreSQL: postgres-fleet.ts): recent files and bags, announcements (the bag view and webhook
 * deliveries, recorded together) and per-uploader statistics. A session store exposes it as
 * `store.fleet`.
 */
export interface FleetStore {
  /** Every uploader's stored files, newest first. */
  recentFiles(limit: number): Promise<FileRecord[]>;
  /** The stored files directly inside `folder` (not in its subfolders). */
  filesIn(uploader: string, folder: string): Promise<FileRecord[]>;
  /** Unfinished sessions with the bytes they hold, for the uploads in progress. */
  openSessionSummaries(): Promise<OpenSessionSummary[]>;

  /**
   * Stored files whose announcement is pending, oldest first. A file is pending from the moment
   * it is recorded with new content (putFile, completeSession) until `announce` records it, so
   * a crash in between is caught up at the next start.
   */
  filesToAnnounce(limit: number): Promise<FileToAnnounce[]>;
  /**
   * Records an announcement in one transaction: the file is no longer pending, its bag record is
   * written and its webhook deliveries are queued. Returns false, writing nothing, when the file
   * is no longer pending with this content (announced already, or replaced since).
   */
  announce(announcement: Announcement): Promise<boolean>;
  getBag(uploader: string, folder: string): Promise<BagRecord | undefined>;
  /** Bags, most recently changed first; of one uploader, and complete or not, when given. */
  listBags(query: BagQuery): Promise<BagRecord[]>;
  bagCounts(): Promise<BagCounts>;

  /** Deliveries due at `now`, earliest first. */
  dueDeliveries(now: number, limit: number): Promise<WebhookDelivery[]>;
  /** The earliest time a delivery is due, or undefined when none is pending. */
  nextDeliveryAt(): Promise<number | undefined>;
  /** A delivery that arrived (or was given up): forgotten. */
  deleteDelivery(id: string): Promise<void>;
  /** A failed attempt: counted, and the next one scheduled. */
  rescheduleDelivery(id: string, attempts: number, nextAttemptAt: number, error: string): Promise<void>;
  /** Pending deliveries by hook. */
  pendingDeliveries(): Promise<Record<WebhookHook, number>>;
  /** Deletes every pending delivery of a hook (no longer configured); returns how many. */
  dropDeliveries(hook: WebhookHook): Promise<number>;

  /** Every uploader's statistics. */
  uploaderStats(): Promise<UploaderStats[]>;
  /** Writes uploaders' statistics (replacing their earlier ones). */
  saveUploaderStats(stats: readonly UploaderStats[]): Promise<void>;
}
