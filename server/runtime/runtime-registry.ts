import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionApi } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import { SessionRuntime } from './session-runtime.js';

/**
 * The sessions a server process is working with, by id: the seam between the use cases and
 * where per-session working state lives. `get` is the ownership check of every route: a
 * session of another uploader, or of the other API, is reported exactly like a missing one
 * (its existence is not disclosed).
 */
export interface SessionRuntimes {
  get(id: string, uploader: string, api: SessionApi): Promise<SessionRuntime>;
  /** The session with this id whoever owns it, loading it from the store; undefined when there is none. */
  find(id: string): Promise<SessionRuntime | undefined>;
  /** A session just created: loaded from now on. */
  add(runtime: SessionRuntime): void;
  /** The session ended: forget it (the store no longer has it, or has it complete). */
  drop(id: string): void;
  /** Every loaded session. */
  all(): SessionRuntime[];
  /**
   * Runs `task` with the session as it is now while no completion, cancellation or expiry of it
   * runs anywhere else: in one process `runtime` is that state (the in-memory `completing`
   * state and shared completion promise already keep those apart); server replicas take the
   * session's shared lock and load it afresh (undefined when it is gone).
   */
  exclusive<T>(runtime: SessionRuntime, task: (current: SessionRuntime | undefined) => Promise<T>): Promise<T>;
  /**
   * Forgets the loaded sessions nobody has looked up for the idle time and nothing works with
   * (SessionRuntime.busy); they stay in the store and are loaded again when used. Returns how
   * many were dropped. Called by the expiry sweeper; an implementation may also do it by itself.
   */
  dropIdle(now: number): number;
}

/** Session ids are UUIDs: anything much longer is not one, and is not looked up. */
export const MAX_ID_LENGTH = 100;

/** SESSION_NOT_FOUND for a session that is not this uploader's (or this API's), exactly as for a missing one. */
export function notThisUploaders(id: string): UploadError {
  return new UploadError(
    'SESSION_NOT_FOUND',
    `No upload session ${JSON.stringify(id)} for this uploader (it may have expired or been cancelled)`,
  );
}

/** How long a loaded session nobody uses stays in memory. */
export const RUNTIME_IDLE_MS = 60_000;

/**
 * SessionRuntimes in this process's memory, loaded from the session store on first use and
 * dropped once idle for `idleMs` (nobody looked it up, and no chunk, hash pump, completion or
 * lock works with it): the sessions live in the store, memory holds only those in use, so
 * abandoned sessions cost no memory however many there are. Whenever a session is loaded or
 * added, the idle ones are looked for (at most every idleMs/4), so a burst of new sessions never
 * piles up; the expiry sweeper does it too when no request comes. A session dropped and used
 * again is loaded again, its prefix hash rebuilt from the staged data (as after a restart).
 */
export class RuntimeRegistry implements SessionRuntimes {
  readonly #store: SessionStore;
  readonly #idleMs: number;
  #lastIdleCheck = Date.now();
  readonly #loaded = new Map<string, SessionRuntime>();
  /** Loads in progress: concurrent requests for one session share its one runtime. */
  readonly #loading = new Map<string, Promise<SessionRuntime | undefined>>();
  /** Sessions dropped while they were being loaded: the load must not bring them back. */
  readonly #droppedWhileLoading = new Set<string>();

  constructor(store: SessionStore, idleMs = RUNTIME_IDLE_MS) {
    this.#store = store;
    this.#idleMs = idleMs;
  }

  async get(id: string, uploader: string, api: SessionApi): Promise<SessionRuntime> {
    const runtime = await this.find(id);
    if (!runtime || runtime.record.uploader !== uploader || runtime.record.api !== api) throw notThisUploaders(id);
    return runtime;
  }

  find(id: string): Promise<SessionRuntime | undefined> {
    const loaded = this.#loaded.get(id);
    if (loaded) {
      loaded.lastUsed = Date.now();
      return Promise.resolve(loaded);
    }
    if (id.length > MAX_ID_LENGTH) return Promise.resolve(undefined);
    let loading = this.#loading.get(id);
    if (!loading) {
      loading = this.#load(id).finally(() => {
        this.#loading.delete(id);
        this.#droppedWhileLoading.delete(id);
      });
      this.#loading.set(id, loading);
    }
    return loading;
  }

  add(runtime: SessionRuntime): void {
    this.#loaded.set(runtime.id, runtime);
    this.#dropIdleNowAndThen();
  }

  drop(id: string): void {
    this.#loaded.delete(id);
    if (this.#loading.has(id)) this.#droppedWhileLoading.add(id);
  }

  all(): SessionRuntime[] {
    return [...this.#loaded.values()];
  }

  exclusive<T>(runtime: SessionRuntime, task: (current: SessionRuntime | undefined) => Promise<T>): Promise<T> {
    return task(runtime);
  }

  dropIdle(now: number): number {
    this.#lastIdleCheck = now;
    let dropped = 0;
    for (const [id, runtime] of this.#loaded) {
      if (now - runtime.lastUsed < this.#idleMs || runtime.busy) continue;
      this.#loaded.delete(id);
      dropped += 1;
    }
    return dropped;
  }

  #dropIdleNowAndThen(): void {
    const now = Date.now();
    if (now - this.#lastIdleCheck >= this.#idleMs / 4) this.dropIdle(now);
  }

  async #load(id: string): Promise<SessionRuntime | undefined> {
    const record = await this.#store.getSession(id);
    if (!record) return undefined;
    const chunks = record.state === 'complete' ? [] : await this.#store.chunks(id);
    // Another request may have created or loaded it meanwhile (a store shared by processes answers slowly).
    const loaded = this.#loaded.get(id);
    if (loaded) return loaded;
    if (this.#droppedWhileLoading.has(id)) return undefined;
    const runtime = new SessionRuntime(record, chunks);
    this.#loaded.set(id, runtime);
    this.#dropIdleNowAndThen();
    return runtime;
  }
}
