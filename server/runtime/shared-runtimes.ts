import { SavedPrefixHash } from '../integrity/saved-prefix-hash.js';
import type { SessionApi } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { KeyedLock } from './mutex.js';
import { MAX_ID_LENGTH, notThisUploaders, type SessionRuntimes } from './runtime-registry.js';
import { type InFlightChunk, SessionRuntime } from './session-runtime.js';

/**
 * The sessions of server replicas that share one session store (PostgreSQL) and one storage
 * (a bucket): any replica may receive any request of any upload, so nothing a request relies
 * on is kept between requests. Each lookup loads the session afresh (record, chunks, and the
 * prefix hash state saved with the last in-order chunk, as a SavedPrefixHash that continues
 * it); changes go to the store at once. What must not run twice at once takes a lock shared by
 * the replicas (`locks`, PostgreSQL advisory locks): the session's staged data (`runtime.lock`,
 * which reloads the session when taken) and its completion, cancellation and expiry
 * (`exclusive`). Only the chunk requests this process is receiving are kept, so that a cancel
 * here aborts them (one elsewhere is noticed when they are acknowledged).
 */
export class SharedRuntimes implements SessionRuntimes {
  readonly #store: SessionStore;
  readonly #locks: KeyedLock;
  readonly #inFlight = new Map<string, Map<number, InFlightChunk>>();

  constructor(store: SessionStore, locks: KeyedLock) {
    this.#store = store;
    this.#locks = locks;
  }

  async get(id: string, uploader: string, api: SessionApi): Promise<SessionRuntime> {
    const runtime = await this.find(id);
    if (!runtime || runtime.record.uploader !== uploader || runtime.record.api !== api) throw notThisUploaders(id);
    return runtime;
  }

  async find(id: string): Promise<SessionRuntime | undefined> {
    if (id.length > MAX_ID_LENGTH) return undefined;
    const loaded = await this.#load(id);
    if (!loaded) return undefined;
    const runtime: SessionRuntime = new SessionRuntime(loaded.record, loaded.chunks, {
      hash: loaded.hash,
      inFlight: this.#inFlightOf(id),
      lock: {
        run: (task) =>
          this.#locks.run(`stage:${id}`, async () => {
            const current = await this.#load(id);
            if (current) runtime.refresh(current.record, current.chunks, current.hash);
            else runtime.ended = true;
            return task();
          }),
      },
    });
    return runtime;
  }

  add(): void {
    // Nothing is kept: the next request loads the session from the store.
  }

  drop(id: string): void {
    const inFlight = this.#inFlight.get(id);
    if (inFlight?.size === 0) this.#inFlight.delete(id);
  }

  /** No session stays loaded between requests. */
  all(): SessionRuntime[] {
    return [];
  }

  /** Nothing stays loaded between requests, so nothing is ever idle. */
  dropIdle(_now: number): number {
    return 0;
  }

  exclusive<T>(runtime: SessionRuntime, task: (current: SessionRuntime | undefined) => Promise<T>): Promise<T> {
    return this.#locks.run(`session:${runtime.id}`, async () => task(await this.find(runtime.id)));
  }

  async #load(id: string) {
    const record = await this.#store.getSession(id);
    if (!record) return undefined;
    const open = record.state !== 'complete';
    const [chunks, saved] = open
      ? await Promise.all([this.#store.chunks(id), this.#store.savedPrefix?.(id)])
      : [[], undefined];
    const hash = await SavedPrefixHash.load(record.api === 'legacy', open ? saved : undefined);
    return { record, chunks, hash };
  }

  #inFlightOf(id: string): Map<number, InFlightChunk> {
    let inFlight = this.#inFlight.get(id);
    if (!inFlight) {
      inFlight = new Map();
      this.#inFlight.set(id, inFlight);
    }
    return inFlight;
  }
}
