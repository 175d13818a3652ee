/**
 * What the engine reports: one snapshot type per upload, and typed events. The CLI's progress
 * output and the ROS node's /upload_status are both built on these.
 */

/** Engine states. `waiting_for_close` is the watcher's (a file seen but not yet closed). */
export type UploadState =
  | 'waiting_for_close'
  | 'queued'
  | 'uploading'
  | 'retrying'
  | 'stalled'
  | 'paused'
  | 'completed'
  | 'failed';

export interface UploadSnapshot {
  /** Stable id of this upload (the journal's key). */
  id: string;
  localPath: string;
  /** Path on the server, relative to the uploader's folder. */
  remotePath: string;
  /** The bag folder's name, or '' for a file outside a bag. */
  bagName: string;
  state: UploadState;
  /** 1 (first) to 10 (last); default 5. */
  priority: number;
  /** Bytes the server has acknowledged plus bytes of chunks now in flight that were sent. */
  bytesSent: number;
  bytesTotal: number;
  /** Recent send rate in bytes/s (0 when idle). */
  rate: number;
  /** Seconds to completion at the current rate, or undefined when unknown. */
  etaSeconds: number | undefined;
  /** Attempt number of the chunk now being sent (1 = first try). */
  attempt: number;
  lastError: string | undefined;
  /** Set once the server verified the whole file. */
  sha256: string | undefined;
  metadata: Record<string, unknown> | undefined;
  /** ISO 8601 times. */
  queuedAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /**
   * ISO 8601: the file's modification time as the upload read it, i.e. when the recorder closed
   * it (undefined before the upload first read the file). Closed → verified is the latency a
   * fleet engineer watches.
   */
  closedAt?: string | undefined;
  /** Bytes this process handed to the connection for this upload, chunks sent again included. */
  transferredBytes?: number | undefined;
  /** The stable UploadError code of `lastError`, when there is one. */
  errorCode?: string | undefined;
  /** For a completed upload: true when the server already held the content and nothing was sent. */
  deduplicated?: boolean | undefined;
}

export interface ProgressEvent {
  upload: UploadSnapshot;
  bytesSent: number;
  bytesTotal: number;
  rate: number;
  etaSeconds: number | undefined;
}

export interface RetryingEvent {
  upload: UploadSnapshot;
  attempt: number;
  /** Seconds until the next attempt. */
  delay: number;
  reason: string;
}

export interface CompletedEvent {
  upload: UploadSnapshot;
  sha256: string;
  /** Seconds from start to verified completion. */
  duration: number;
  /** True when the server already held the same content and nothing was sent. */
  deduplicated: boolean;
}

export interface FailedEvent {
  upload: UploadSnapshot;
  reason: string;
  code: string;
}

/**
 * What keeps every upload waiting, whatever the file, until it is fixed: the state disk is full
 * (STATE_DISK_FULL: the journal cannot be written), or the server's TLS certificate is refused
 * (TLS_CERTIFICATE: a configuration error, not an outage). Uploads are kept, not failed, and go
 * on by themselves once the problem is gone (space freed; the certificate or `caFile` fixed).
 */
export interface EngineProblem {
  code: 'STATE_DISK_FULL' | 'TLS_CERTIFICATE';
  /** What is wrong and how to fix it. */
  message: string;
  /** ISO 8601: when it was first seen. */
  since: string;
}

/** Event name → listener arguments. */
export interface NetworkManagerEvents {
  queued: [UploadSnapshot];
  started: [UploadSnapshot];
  progress: [ProgressEvent];
  retrying: [RetryingEvent];
  stalled: [UploadSnapshot];
  completed: [CompletedEvent];
  failed: [FailedEvent];
  /** Any state change of any upload (queued, started, paused, ...), after the specific event. */
  state: [UploadSnapshot];
  online: [];
  offline: [{ reason: string }];
  /** A problem stops every upload (see EngineProblem); emitted once when it starts. */
  blocked: [EngineProblem];
  /** The problem is gone; uploads go on. */
  unblocked: [EngineProblem];
  /** An upload was cancelled (`cancel()`) and removed from the status; the snapshot is its last state. */
  cancelled: [UploadSnapshot];
  /**
   * The server was found to offer only the legacy (v0) dashboard API (from its /health, once per
   * connection target and again after a reconnect): uploads go through that API.
   */
  legacyApi: [{ server: string }];
}
