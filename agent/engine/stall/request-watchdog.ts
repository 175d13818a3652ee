/**
 * Guards one request attempt with two clocks and aborts it through its AbortController, even
 * while it hangs (the Python dashboard's client could not interrupt a hung request):
 *
 * - the **stall** clock fires when no bytes moved for `stalledMs`; every `progress()` restarts it
 *   (that client's never reset, so after an outage every retry failed at once);
 * - the **deadline** fires when the attempt has been active for `timeoutMs` in total.
 *
 * Time spent waiting for the bandwidth limit (between `hold()` and `release()`) counts on
 * neither clock: that wait is the engine's own choice, not a sign of a dead link. A new
 * watchdog is made for every attempt, so each retry starts with fresh clocks.
 */
export type WatchdogExpiry = 'stalled' | 'timeout';

export interface RequestWatchdogOptions {
  stalledMs: number;
  timeoutMs: number;
  onExpire: (kind: WatchdogExpiry) => void;
  now?: () => number;
}

export class RequestWatchdog {
  readonly #stalledMs: number;
  readonly #timeoutMs: number;
  readonly #onExpire: (kind: WatchdogExpiry) => void;
  readonly #now: () => number;
  #lastProgress: number;
  /** Active time used before the current active stretch. */
  #activeBefore = 0;
  #activeSince: number | undefined;
  #holds = 0;
  #timer: NodeJS.Timeout | undefined;
  #expired: WatchdogExpiry | undefined;
  #stopped = false;

  constructor(options: RequestWatchdogOptions) {
    this.#stalledMs = options.stalledMs;
    this.#timeoutMs = options.timeoutMs;
    this.#onExpire = options.onExpire;
    this.#now = options.now ?? (() => performance.now());
    this.#lastProgress = this.#now();
    this.#activeSince = this.#lastProgress;
    this.#arm();
  }

  /** Why it fired, or undefined. */
  get expired(): WatchdogExpiry | undefined {
    return this.#expired;
  }

  /** Bytes moved: restart the stall clock. */
  progress(): void {
    this.#lastProgress = this.#now();
  }

  /** Stop both clocks (waiting for the throttle). Calls nest. */
  hold(): void {
    this.#holds += 1;
    if (this.#holds === 1 && this.#activeSince !== undefined) {
      this.#activeBefore += this.#now() - this.#activeSince;
      this.#activeSince = undefined;
    }
  }

  /** Restart both clocks after a hold; the stall clock starts afresh. */
  release(): void {
    if (this.#holds === 0) return;
    this.#holds -= 1;
    if (this.#holds === 0) {
      this.#activeSince = this.#now();
      this.#lastProgress = this.#activeSince;
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopped = true;
  }

  #arm(delay = Math.min(this.#stalledMs, this.#timeoutMs)): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#check(), Math.max(1, Math.ceil(delay)));
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#expired) return;
    const now = this.#now();
    if (this.#activeSince === undefined) {
      // Held: nothing counts; look again later.
      this.#arm(Math.min(this.#stalledMs, this.#timeoutMs, 1000));
      return;
    }
    const active = this.#activeBefore + (now - this.#activeSince);
    const idle = now - this.#lastProgress;
    let kind: WatchdogExpiry | undefined;
    if (active >= this.#timeoutMs) kind = 'timeout';
    else if (idle >= this.#stalledMs) kind = 'stalled';
    if (kind) {
      this.#expired = kind;
      this.#onExpire(kind);
      return;
    }
    this.#arm(Math.min(this.#stalledMs - idle, this.#timeoutMs - active));
  }
}
