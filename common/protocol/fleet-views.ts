/**
 * What the server's fleet view sends: the dashboard's event stream (`GET /v1/events`,
 * server-sent events), `GET /v1/fleet` and `GET /v1/bags`. Shared by the server and the
 * dashboard page. Times are ISO 8601, sizes bytes, rates bytes per second.
 */

/** One uploader (robot). */
export interface RobotView {
  uploader: string;
  /** A request from it within the last ONLINE_WINDOW_SECONDS. */
  online: boolean;
  lastSeen: string | null;
  /** Bytes received from it today (server's local day), counted per verified chunk or whole file. */
  bytesToday: number;
  /** Files it completed today. */
  filesToday: number;
  /** Recent receive rate (last 10 s). */
  rate: number;
  /** Error answers it got in the last hour. */
  errorsLastHour: number;
  /** Its uploads now in progress. */
  uploading: number;
}

/** A robot counts as online while it made a request this recently. */
export const ONLINE_WINDOW_SECONDS = 120;
/** An open upload with no chunk for this long shows as stalled. */
export const STALLED_AFTER_SECONDS = 60;

export type UploadViewState = 'receiving' | 'stalled' | 'completing';

/** An upload session in progress. */
export interface UploadView {
  id: string;
  uploader: string;
  path: string;
  size: number;
  receivedBytes: number;
  rate: number;
  /** Seconds to go at the current rate, or null when not moving. */
  etaSeconds: number | null;
  state: UploadViewState;
  startedAt: string;
  updatedAt: string;
}

/** A bag folder. */
export interface BagView {
  uploader: string;
  /** The bag folder, relative to the uploader's folder. */
  bag: string;
  complete: boolean;
  /** metadata.yaml is verified (and readable). */
  hasMetadata: boolean;
  /** Files metadata.yaml lists, or null until it arrives. */
  expected: number | null;
  /** Listed files verified. */
  arrived: number;
  /** Listed files not verified yet (at most MISSING_SHOWN names). */
  missing: string[];
  missingCount: number;
  /** Verified files in the folder, listed or not, and their bytes. */
  files: number;
  bytes: number;
  /** Why metadata.yaml could not be read, or null. */
  metadataError: string | null;
  completedAt: string | null;
  updatedAt: string;
}

/** How many missing names a BagView carries (GET /v1/bags/<uploader>/<bag> has them all). */
export const MISSING_SHOWN = 20;

/** GET /v1/bags/<uploader>/<bag>: a bag with its files. */
export interface BagDetail extends BagView {
  /** Every name metadata.yaml lists, or null. */
  listed: string[] | null;
  /** Every listed name not verified yet. */
  missingAll: string[];
  verified: { name: string; size: number; sha256: string; completedAt: string; listed: boolean }[];
  storageIdentifier: string | null;
  /** The id of its bag-complete event (as sent to the webhook), or null. */
  eventId: string | null;
}

/** A file verified and stored. */
export interface CompletionView {
  uploader: string;
  path: string;
  size: number;
  sha256: string;
  completedAt: string;
}

/** An error answer to a client, or an upload's failed completion. */
export interface FailureView {
  /** Increasing per server process; the page deduplicates on it. */
  id: number;
  at: string;
  /** The uploader, or null when the request had no valid token. */
  uploader: string | null;
  /** A wire error code (common/protocol/errors/wire-errors.ts). */
  code: string;
  status: number;
  message: string;
  /** `PUT /v1/sessions/:id/chunks/:index` and the like. */
  route: string;
}

export interface ServerView {
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  /** Free bytes of the storage, or null when it has no such limit (a bucket) or is unknown. */
  freeBytes: number | null;
  bags: { complete: number; incomplete: number };
}

/** The first message of the stream, after every (re)connection: the whole view. */
export interface FleetSnapshot {
  type: 'snapshot';
  at: string;
  /** The viewer this stream is for ('anonymous' on an open server). */
  viewer: string;
  server: ServerView;
  robots: RobotView[];
  uploads: UploadView[];
  /** The most recently changed bags, at most SNAPSHOT_BAGS. */
  bags: BagView[];
  completions: CompletionView[];
  failures: FailureView[];
}

/** Bags a snapshot carries at most. */
export const SNAPSHOT_BAGS = 5000;

/** Then at most once a second, what changed: each item replaces the one with its key. */
export interface FleetUpdate {
  type: 'update';
  at: string;
  server: ServerView;
  robots: RobotView[];
  uploads: UploadView[];
  /** Ids of uploads no longer in progress (completed, cancelled, expired, failed). */
  removedUploads: string[];
  bags: BagView[];
  completions: CompletionView[];
  failures: FailureView[];
}

export type FleetMessage = FleetSnapshot | FleetUpdate;

/** GET /v1/dashboard/session: who the page is logged in as. */
export interface ViewerSession {
  viewer: string;
  /** True when the server is open (no tokens): no login needed. */
  open: boolean;
}
