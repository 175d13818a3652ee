/**
 * Bytes per second over the last `seconds` seconds, in one-second buckets: adding is O(1) and
 * memory is fixed, however fast the bytes come.
 */
export class RateWindow {
  readonly #buckets: Float64Array;
  readonly #seconds: number;
  /** The second (epoch seconds) of the newest bucket. */
  #head = 0;

  constructor(seconds = 10) {
    this.#seconds = seconds;
    this.#buckets = new Float64Array(seconds);
  }

  add(bytes: number, nowMs: number): void {
    this.#advance(nowMs);
    this.#buckets[this.#head % this.#seconds] = (this.#buckets[this.#head % this.#seconds] ?? 0) + bytes;
  }

  /** Bytes per second over the window, rounded. */
  rate(nowMs: number): number {
    this.#advance(nowMs);
    let sum = 0;
    for (const bytes of this.#buckets) sum += bytes;
    return Math.round(sum / this.#seconds);
  }

  #advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second <= this.#head) return;
    const steps = Math.min(this.#seconds, second - this.#head);
    for (let i = 1; i <= steps; i += 1) this.#buckets[(this.#head + i) % this.#seconds] = 0;
    this.#head = second;
  }
}
