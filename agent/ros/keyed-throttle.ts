/**
 * At most one run per key per interval, leading and trailing: a call runs at once if the key
 * last ran at least `intervalMs` ago; otherwise the latest call runs when the interval ends, so
 * the last value is never lost. Used for `upload_status` progress (2 Hz per file) and for
 * `~/queue` on change.
 */
export class KeyedThrottle<K> {
  readonly #intervalMs: number;
  readonly #lastRun = new Map<K, number>();
  readonly #pending = new Map<K, { fn: () => void; timer: NodeJS.Timeout }>();

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Runs fn now (always when `force`), or schedules it as the key's trailing run. */
  run(key: K, fn: () => void, force = false): void {
    const now = Date.now();
    const last = this.#lastRun.get(key);
    if (force || last === undefined || now - last >= this.#intervalMs) {
      this.#cancel(key);
      this.#lastRun.set(key, now);
      fn();
      return;
    }
    const pending = this.#pending.get(key);
    if (pending) {
      pending.fn = fn;
      return;
    }
    const timer = setTimeout(
      () => {
        const entry = this.#pending.get(key);
        this.#pending.delete(key);
        if (!entry) return;
        this.#lastRun.set(key, Date.now());
        entry.fn();
      },
      last + this.#intervalMs - now,
    );
    timer.unref();
    this.#pending.set(key, { fn, timer });
  }

  /** Drops the key's pending run and history (an upload that finished). */
  forget(key: K): void {
    this.#cancel(key);
    this.#lastRun.delete(key);
  }

  /** Cancels every pending run. */
  clear(): void {
    for (const key of [...this.#pending.keys()]) this.#cancel(key);
    this.#lastRun.clear();
  }

  #cancel(key: K): void {
    const pending = this.#pending.get(key);
    if (pending) clearTimeout(pending.timer);
    this.#pending.delete(key);
  }
}
