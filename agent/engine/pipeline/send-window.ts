/**
 * How many chunk requests of one upload may wait for their answers at once, adapted to the
 * link. Chunk bodies go out back to back; each waits, after its last byte, for the server's
 * answer (one round trip plus the server's write). To keep the link busy through that wait, the
 * window must hold one chunk per body time that fits into it: size = 1 + ceil((body + wait) /
 * body). On loopback that is 2 or 3; over 150 ms of round trip at 300 MiB/s, about 8.
 *
 * Only the bookkeeping lives here (answers pending, measured times); the buffers stay bounded
 * by ChunkBuffers: a chunk's buffer is reused as soon as its body left, not when it is answered.
 */
export class SendWindow {
  /** Requests waiting for their answers. */
  readonly #pending = new Set<Promise<unknown>>();
  readonly #max: number;
  /** Smoothed body and answer-wait times (ms); undefined until the first answer. */
  #bodyMs: number | undefined;
  #waitMs: number | undefined;

  /** `max`: the most requests in flight (1: one chunk at a time, answer before the next body). */
  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max));
  }

  /** The current window: 2 (one body going, one answer awaited) until measured, then adapted, within [1, max]. */
  get size(): number {
    if (this.#bodyMs === undefined || this.#waitMs === undefined) return Math.min(2, this.#max);
    const wanted = 1 + Math.ceil((this.#bodyMs + this.#waitMs) / Math.max(this.#bodyMs, 0.5));
    return Math.max(1, Math.min(this.#max, wanted));
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** One answered request: how long its body took to leave, and how long its answer took after that. */
  sample(bodyMs: number, waitMs: number): void {
    this.#bodyMs = smooth(this.#bodyMs, Math.max(0, bodyMs));
    this.#waitMs = smooth(this.#waitMs, Math.max(0, waitMs));
  }

  /** Counts `request` in flight until it settles (it must not reject). */
  track(request: Promise<unknown>): void {
    this.#pending.add(request);
    void request.finally(() => this.#pending.delete(request));
  }

  /** Resolves once fewer than `size` requests are in flight. */
  async room(): Promise<void> {
    while (this.#pending.size >= this.size) await Promise.race(this.#pending);
  }

  /** Resolves once no request is in flight. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.race(this.#pending);
  }
}

/** An exponentially weighted moving average: recent chunks count most, one outlier little. */
function smooth(previous: number | undefined, value: number): number {
  return previous === undefined ? value : previous * 0.7 + value * 0.3;
}
