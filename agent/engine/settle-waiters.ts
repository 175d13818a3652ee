import type { UploadSnapshot } from './upload-events.js';

/**
 * The callers of `onIdle()` and `whenSettled()` (p-queue's completion promises), kept apart from
 * the engine's bookkeeping: the engine says when an upload settled and when it may have become
 * idle, and this resolves whoever waits for that. Nothing is kept per upload unless someone waits
 * for it.
 */
export class SettleWaiters {
  readonly #idle: (() => void)[] = [];
  readonly #uploads = new Map<string, ((upload: UploadSnapshot) => void)[]>();

  /** Resolves at once when `idleNow`, else at the first `maybeIdle(true)`. */
  idle(idleNow: boolean): Promise<void> {
    if (idleNow) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Resolves with the upload's final snapshot once `settled(id)` is called for it. */
  upload(id: string): Promise<UploadSnapshot> {
    return new Promise((resolve) => {
      const waiting = this.#uploads.get(id);
      if (waiting) waiting.push(resolve);
      else this.#uploads.set(id, [resolve]);
    });
  }

  /** The upload completed (and was announced), failed or was cancelled. */
  settled(upload: UploadSnapshot): void {
    const waiting = this.#uploads.get(upload.id);
    if (!waiting) return;
    this.#uploads.delete(upload.id);
    for (const resolve of waiting) resolve(upload);
  }

  /** Called after anything that may have left the engine idle. */
  maybeIdle(idleNow: boolean): void {
    if (!idleNow || this.#idle.length === 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
