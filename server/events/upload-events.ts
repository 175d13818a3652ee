import { EventEmitter } from 'node:events';
import type { UploadErrorCode } from '../../common/errors/upload-error.js';
import type { SessionApi } from '../sessions/session-record.js';

/** What every session event says about its session. */
export interface SessionEventBase {
  sessionId: string;
  api: SessionApi;
  uploader: string;
  /** The requested relative path. */
  path: string;
  size: number;
}

/** A new session (a native create that resumed nothing, a legacy init). */
export interface SessionCreatedEvent extends SessionEventBase {
  chunkCount: number;
}

/** A chunk verified and acknowledged (a re-sent duplicate is not one). */
export interface ChunkStoredEvent extends SessionEventBase {
  index: number;
  /** The chunk's length in bytes. */
  bytes: number;
  receivedChunks: number;
  chunkCount: number;
  receivedBytes: number;
}

/** A file verified (full SHA-256) and durably stored, or found already stored with this content. */
export interface FileCompletedEvent {
  /** The session it completes; null for a whole-file upload. */
  sessionId: string | null;
  api: SessionApi;
  uploader: string;
  /** The path it is stored at, under the uploader (the legacy API may pick a unique name). */
  path: string;
  size: number;
  sha256: string;
  /** True when the same content was already stored there and nothing changed. */
  deduplicated: boolean;
  /** ISO 8601. */
  completedAt: string;
}

/** A completion refused for the upload's own reason; the session stays (re-send and complete again) unless `ended`. */
export interface SessionFailedEvent extends SessionEventBase {
  code: UploadErrorCode;
  message: string;
  /** True when the session was dropped (its staged data was lost). */
  ended: boolean;
}

/** A session cancelled: by its client, or superseded by a create for a changed file. */
export interface SessionCancelledEvent extends SessionEventBase {
  reason: 'client' | 'superseded';
}

/** A session deleted with its data after sessionExpiry without activity. */
export type SessionExpiredEvent = SessionEventBase;

/** A bag folder whose metadata.yaml and every file it lists are verified (see server/fleet/bag-tracker.ts). */
export interface BagCompletedEvent {
  /** Stable id of this completion (the webhook's event id). */
  eventId: string;
  uploader: string;
  /** The bag folder, relative to the uploader's folder. */
  bag: string;
  /** The bag's files (metadata.yaml included), with what was verified. */
  files: { path: string; size: number; sha256: string }[];
  bytes: number;
  storageIdentifier: string | null;
  /** ISO 8601. */
  completedAt: string;
}

/** A bag's record changed: a file of it arrived, or its metadata.yaml was read. */
export interface BagUpdatedEvent {
  uploader: string;
  bag: string;
  complete: boolean;
}

/** The events of the upload server, by name. */
export interface UploadEventMap {
  'session-created': SessionCreatedEvent;
  'chunk-stored': ChunkStoredEvent;
  'file-completed': FileCompletedEvent;
  'session-failed': SessionFailedEvent;
  'session-cancelled': SessionCancelledEvent;
  'session-expired': SessionExpiredEvent;
  'bag-updated': BagUpdatedEvent;
  'bag-completed': BagCompletedEvent;
}

export type UploadEventName = keyof UploadEventMap;

/** The subscription side, handed to library callers (dashboards, webhooks, metrics). */
export interface UploadEvents {
  on<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this;
  once<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this;
  off<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this;
}

/**
 * The upload events (and the bag events derived from them), emitted synchronously after the
 * fact they report is durable (a completed file is emitted once it is committed and indexed). A listener that throws is
 * logged through `onListenerError` and never disturbs the upload or the other listeners; a
 * listener that needs to do slow work (a webhook) queues it itself.
 */
export class UploadEventBus implements UploadEvents {
  readonly #emitter = new EventEmitter();
  readonly #onListenerError: (error: unknown, name: UploadEventName) => void;

  constructor(onListenerError: (error: unknown, name: UploadEventName) => void) {
    this.#onListenerError = onListenerError;
    // Dashboards and webhooks may subscribe many times; the default warning at 10 would be noise.
    this.#emitter.setMaxListeners(0);
  }

  on<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this {
    this.#emitter.on(name, listener);
    return this;
  }

  once<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this {
    this.#emitter.once(name, listener);
    return this;
  }

  off<K extends UploadEventName>(name: K, listener: (event: UploadEventMap[K]) => void): this {
    this.#emitter.off(name, listener);
    return this;
  }

  /** Whether anyone listens to `name` (an event that is costly to describe is skipped otherwise). */
  listens(name: UploadEventName): boolean {
    return this.#emitter.listenerCount(name) > 0;
  }

  emit<K extends UploadEventName>(name: K, event: UploadEventMap[K]): void {
    for (const listener of this.#emitter.rawListeners(name) as ((event: UploadEventMap[K]) => void)[]) {
      try {
        listener.call(this.#emitter, event);
      } catch (error) {
        this.#onListenerError(error, name);
      }
    }
  }
}
