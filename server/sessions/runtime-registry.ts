import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionApi } from './session-record.js';
import { SessionRuntime } from './session-runtime.js';
import type { SessionStore } from './session-store.js';

/**
 * The loaded sessions, by id. `get` is the ownership check of every route: a session of another
 * uploader, or of the other API, is reported exactly like a missing one (its existence is not
 * disclosed).
 */
export class RuntimeRegistry {
  readonly #store: SessionStore;
  readonly #loaded = new Map<string, SessionRuntime>();

  constructor(store: SessionStore) {
    this.#store = store;
  }

  get(id: string, uploader: string, api: SessionApi): SessionRuntime {
    const runtime = this.find(id);
    if (!runtime || runtime.record.uploader !== uploader || runtime.record.api !== api) {
      throw new UploadError('SESSION_NOT_FOUND', `No upload session ${JSON.stringify(id)} for this uploader (it may have expired or been cancelled)`);
    }
    return runtime;
  }

  /** The session with this id whoever owns it, loading it from the store; undefined when there is none. */
  find(id: string): SessionRuntime | undefined {
    const loaded = this.#loaded.get(id);
    if (loaded) return loaded;
    if (id.length > 100) return undefined;
    const record = this.#store.getSession(id);
    if (!record) return undefined;
    const runtime = new SessionRuntime(record, record.state === 'complete' ? [] : this.#store.chunks(id));
    this.#loaded.set(id, runtime);
    return runtime;
  }

  add(runtime: SessionRuntime): void {
    this.#loaded.set(runtime.id, runtime);
  }

  drop(id: string): void {
    this.#loaded.delete(id);
  }

  all(): SessionRuntime[] {
    return [...this.#loaded.values()];
  }
}
