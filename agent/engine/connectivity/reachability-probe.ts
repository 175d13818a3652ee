/**
 * Finds out when the server is reachable again, cheaply: only while the engine is offline, one
 * `GET /health` at a time, with backoff (first after `minDelayMs`, then doubling with jitter up
 * to `maxDelayMs`). Never a fixed short interval: the Python dashboard's client polled /health every 5 s and locked
 * itself out of its own rate limit.
 */
export interface ReachabilityProbeOptions {
  /** One probe: resolves true when the server answered. Must not throw. */
  check: (signal: AbortSignal) => Promise<boolean>;
  minDelayMs: () => number;
  maxDelayMs: () => number;
  onReachable: () => void;
  /** Called after each failed probe (for logs). */
  onUnreachable?: (nextDelayMs: number) => void;
  random?: () => number;
}

export class ReachabilityProbe {
  readonly #options: ReachabilityProbeOptions;
  #timer: NodeJS.Timeout | undefined;
  #controller: AbortController | undefined;
  #failures = 0;
  #running = false;
  #probes = 0;

  constructor(options: ReachabilityProbeOptions) {
    this.#options = options;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Probes sent since construction. */
  get probes(): number {
    return this.#probes;
  }

  /** Starts probing (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#failures = 0;
    this.#schedule(this.delayAfter(0));
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller?.abort();
    this.#controller = undefined;
  }

  /** The delay before probe number `failures + 1`. */
  delayAfter(failures: number): number {
    const min = this.#options.minDelayMs();
    const max = Math.max(min, this.#options.maxDelayMs());
    const base = Math.min(max, min * 2 ** failures);
    const random = this.#options.random ?? Math.random;
    return base / 2 + random() * (base / 2);
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(() => void this.#probe(), delay);
  }

  async #probe(): Promise<void> {
    this.#timer = undefined;
    if (!this.#running) return;
    this.#controller = new AbortController();
    this.#probes += 1;
    const ok = await this.#options.check(this.#controller.signal).catch(() => false);
    this.#controller = undefined;
    if (!this.#running) return;
    if (ok) {
      this.#running = false;
      this.#options.onReachable();
      return;
    }
    this.#failures += 1;
    const delay = this.delayAfter(this.#failures);
    this.#options.onUnreachable?.(delay);
    this.#schedule(delay);
  }
}
