/**
 * The one bandwidth limiter shared by every upload of an engine (the Python dashboard's client throttled each file on
 * its own, so two uploads used twice the limit).
 *
 * Callers ask for small slices (`sliceSize()`, about 20 ms worth of bytes at the current rate),
 * so no whole chunk ever leaves at line rate. Tokens refill continuously from a monotonic clock;
 * the burst capacity is tiny (about 50 ms worth), and a grant may leave the bucket in debt, which
 * later grants repay: over any long window the rate is exact, and no 1-s window can exceed the
 * limit by more than the burst capacity. While the bucket is in use (a caller waits, or took
 * tokens within the last second) the capacity is larger (BUSY_BURST_SECONDS): when the process
 * gets no CPU for a while (both cores busy elsewhere), the tokens of that time are not thrown
 * away but spent when it runs again, so a starved agent still averages its limit; a 1-s window
 * then holds at most 1.15 × the limit. An idle bucket keeps the small capacity, so a new upload
 * does not start with a burst. Waiters are served first come, first served, so
 * concurrent uploads share the limit fairly. `setRate` takes effect at once, also for callers
 * already waiting.
 */

/** Bytes handed out at once when there is no limit (bounds progress granularity, not speed). */
const UNLIMITED_SLICE = 256 * 1024;
const MIN_SLICE = 512;
const MAX_SLICE = 64 * 1024;
/** Slices are about this long in time at the current rate. */
const SLICE_SECONDS = 0.02;
/** Burst capacity in seconds of the current rate. */
const BURST_SECONDS = 0.05;
/** Burst capacity while the bucket is in use: tokens of a short CPU starvation are kept. */
const BUSY_BURST_SECONDS = 0.15;
/** The bucket counts as in use this long after its last grant. */
const BUSY_MS = 1000;

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class TokenBucket {
  #rate: number;
  #tokens: number;
  #last: number;
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** When tokens were last asked for (-Infinity: never). */
  #lastDemand = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  /** @param rate bytes per second; 0 means unlimited. */
  constructor(rate = 0, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#rate = sanitize(rate);
    this.#last = now();
    this.#tokens = this.capacity;
  }

  /** Bytes per second in force; 0 = unlimited. */
  get rate(): number {
    return this.#rate;
  }

  /** Changes the rate now; callers already waiting are rescheduled at the new rate. */
  setRate(rate: number): void {
    const next = sanitize(rate);
    if (next === this.#rate) return;
    this.#refill();
    this.#rate = next;
    this.#tokens = Math.min(this.#tokens, this.capacity);
    this.#pump();
  }

  /** The largest piece a caller should ask for at once at the current rate. */
  sliceSize(): number {
    if (this.#rate === 0) return UNLIMITED_SLICE;
    return Math.max(MIN_SLICE, Math.min(MAX_SLICE, Math.floor(this.#rate * SLICE_SECONDS)));
  }

  /** Burst capacity in bytes. */
  get capacity(): number {
    if (this.#rate === 0) return Number.POSITIVE_INFINITY;
    return Math.max(this.sliceSize(), this.#rate * BURST_SECONDS);
  }

  /** Burst capacity in bytes while the bucket is in use (see the class comment). */
  get #busyCapacity(): number {
    return Math.max(this.capacity, this.#rate * BUSY_BURST_SECONDS);
  }

  /** How many callers are waiting. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once `bytes` may be sent. Rejects with the signal's reason when it aborts first
   * (the bytes are then not charged).
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#rate === 0) return Promise.resolve();
    if (this.#waiters.length === 0) {
      this.#refill();
      this.#lastDemand = this.#now();
      if (this.#tokens >= Math.min(bytes, this.capacity)) {
        this.#tokens -= bytes;
        return Promise.resolve();
      }
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(signal.reason);
          this.#pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  /** Rejects every waiter (used when the engine shuts down). */
  close(reason: unknown): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }

  #refill(): void {
    const now = this.#now();
    if (this.#rate > 0) {
      const busy = this.#waiters.length > 0 || now - this.#lastDemand <= BUSY_MS;
      const cap = busy ? this.#busyCapacity : this.capacity;
      // Never lowers what is already there (a cap applies to what accrues).
      this.#tokens = Math.min(Math.max(cap, this.#tokens), this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    }
    this.#last = now;
  }

  #pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#refill();
    for (let waiter = this.#waiters[0]; waiter !== undefined; waiter = this.#waiters[0]) {
      if (this.#rate > 0) {
        const needed = Math.min(waiter.bytes, this.capacity);
        if (this.#tokens < needed) {
          const ms = Math.max(1, Math.ceil(((needed - this.#tokens) / this.#rate) * 1000));
          this.#timer = setTimeout(() => this.#pump(), ms);
          return;
        }
        this.#tokens -= waiter.bytes;
        this.#lastDemand = this.#now();
      }
      this.#waiters.shift();
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
  }
}

function sanitize(rate: number): number {
  return Number.isFinite(rate) && rate > 0 ? rate : 0;
}
