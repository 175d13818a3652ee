import type { FleetStore } from './fleet-store.js';
import type {
  ChunkRecord,
  CompletionResult,
  FileRecord,
  PrefixAdvance,
  SessionRecord,
  StoredPrefix,
} from './session-record.js';

/** What `createOrResume` did. */
export interface CreateOrResumeOutcome {
  /** The session now in force: the new record, or the open one for the same file. */
  session: SessionRecord;
  /** True when an open session for the same file existed and was resumed instead. */
  resumed: boolean;
}

/** A stored file's key in the index. */
export interface FileKey {
  uploader: string;
  path: string;
}

/**
 * The durable state of uploads: sessions, their acknowledged chunks, and the index of completed
 * files. Every method is asynchronous so that a database server can implement it; the embedded
 * default is SQLite (sqlite-session-store.ts). Operations that two server processes could race
 * on later (creating or resuming a file's session, acknowledging chunks, completing) are single
 * methods, so an implementation can make each atomic (one transaction) instead of leaving a
 * read-then-write to its callers. Times are epoch milliseconds.
 *
 * **Durability:** a method resolves only once every change it made (and every change it read)
 * would survive power loss: the server answers clients right after, and promises what it
 * answered (SQLite: the log is fsynced after the commit; PostgreSQL: synchronous_commit on).
 * A store whose disk is full rejects with UploadError INSUFFICIENT_STORAGE (507), never with a
 * bare database error.
 */
export interface SessionStore {
  /** Records a new session (the legacy API: every init is a new session). */
  insertSession(record: SessionRecord): Promise<void>;
  /**
   * Records `record` unless an unfinished native session for the same file (uploader, path,
   * size, fingerprint) exists; that one is resumed instead (its `replace` flag taken from
   * `record`, its expiry moved to `record.expiresAt`). Atomic: two callers creating the same
   * file at once end up with one session.
   */
  createOrResume(record: SessionRecord): Promise<CreateOrResumeOutcome>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Unfinished native sessions of an uploader for a path, newest first. */
  openSessionsFor(uploader: string, relativePath: string): Promise<SessionRecord[]>;
  /** A resumed session: its `replace` flag from the latest request and its new expiry. */
  resumeSession(id: string, replace: boolean, now: number, expiresAt: number): Promise<void>;
  /** Deletes a session with its chunks (a completed session's file stays in the index). */
  deleteSession(id: string): Promise<void>;
  /** At most `limit` sessions (open or completed) whose expiry has passed, those that expired first first. */
  expiredSessions(now: number, limit: number): Promise<SessionRecord[]>;
  /** How many sessions of an uploader are not complete (for the per-uploader cap, maxOpenSessions). */
  openSessionCount(uploader: string): Promise<number>;
  /** Ids of every session that is not complete. */
  unfinishedSessionIds(): Promise<Set<string>>;
  /** Start-up: sessions a crash left in the middle of completing are open again; returns how many. */
  reopenInterrupted(now: number): Promise<number>;

  /** The acknowledged chunks of a session, by index. */
  chunks(id: string): Promise<ChunkRecord[]>;
  /**
   * Records a verified chunk (replacing an earlier record of its index) and the session's new
   * expiry, together; with `prefix`, in the same transaction, the session's stored prefix hash
   * advances when it is still at `prefix.from` (stores that keep it). Rejects with an
   * UploadError SESSION_NOT_FOUND when the session is gone (cancelled by another process).
   */
  ackChunk(id: string, chunk: ChunkRecord, now: number, expiresAt: number, prefix?: PrefixAdvance): Promise<void>;
  deleteChunks(id: string, indexes: readonly number[]): Promise<void>;
  /** Where the legacy API's chunks sit in the assembled data (null: not appended yet). */
  setChunkOffsets(id: string, changes: readonly { index: number; offset: number | null }[]): Promise<void>;

  /** Marks a session complete with its answer, records the file and drops the chunk records, together. */
  completeSession(
    id: string,
    result: CompletionResult,
    file: FileRecord,
    now: number,
    expiresAt: number,
  ): Promise<void>;
  /** Updates a completed session's answer (its gzip copy finished). */
  setResult(id: string, result: CompletionResult): Promise<void>;

  getFile(uploader: string, relativePath: string): Promise<FileRecord | undefined>;
  /** Records a stored file, replacing an earlier record of its path. */
  putFile(file: FileRecord): Promise<void>;
  setCompressedSize(uploader: string, relativePath: string, size: number | null): Promise<void>;
  /** An uploader's stored files, newest first. */
  filesOf(uploader: string, limit: number): Promise<FileRecord[]>;
  /** The bag view, webhook deliveries and statistics (fleet-store.ts), in the same database. */
  readonly fleet: FleetStore;

  /** Forgets a stored file (its file is gone from the storage; see jobs/reconcile-index.ts). */
  deleteFile(uploader: string, relativePath: string): Promise<void>;
  /** How many stored files the index holds. */
  countFiles(): Promise<number>;
  /** Every indexed file in pages of `limit`, ordered by uploader then path, starting after `after`. */
  listFiles(after: FileKey | undefined, limit: number): Promise<FileRecord[]>;

  /** A value the server keeps about itself (e.g. `reconciled_at`); undefined when never set. */
  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string): Promise<void>;

  /**
   * Stores shared by several server processes keep each session's prefix hash, so that any
   * process continues it (runtime/shared-runtimes.ts); a store of one process has none of these.
   */
  savedPrefix?(id: string): Promise<StoredPrefix | undefined>;
  /** Sets the stored prefix to `next` when it is at `from` chunks (any, when null); false when it was not. */
  savePrefix?(id: string, from: number | null, next: StoredPrefix): Promise<boolean>;
  /** Throws when the store cannot be used now (for GET /ready). */
  checkReady?(): Promise<void>;

  close(): Promise<void>;
}
