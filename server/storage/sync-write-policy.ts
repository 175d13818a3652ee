/**
 * A stream's first MiB goes through the pool: synchronous writes pay off for bulk transfers (an
 * 8 MiB chunk), but a small file's one or two batches into a new file (whose first write also
 * allocates on the file system) were slower on the main thread: 2,000 files of 64 KiB, server CPU
 * 3.45–3.69 ms per file against 3.17–3.37 through the pool (bench small-files, alternating runs).
 */
export const SYNC_AFTER = 1024 * 1024;
/** A synchronous write that took longer than this blocked the process too long: the pool takes over for a while. */
export const SLOW_WRITE_MS = 5;
/** How long writes go through the pool after the first slow one; doubled for each slow one that follows. */
export const FIRST_PAUSE_MS = 1_000;
export const LONGEST_PAUSE_MS = 60_000;

/**
 * Decides whether a batch is copied into the page cache by the main thread itself (a synchronous
 * write) or handed to libuv's thread pool. Handing each 128 KiB batch to the pool costs a thread
 * hand-off and a wake-up per batch, and the pool thread copies a buffer that another core has just
 * filled and hashed. Measured with test/server/scripts/measure-server-cpu.ts throughput (1 GiB in
 * 8 MiB chunks, four alternating runs on 2 cores, the same build with and without): server CPU
 * 2.44–2.64 s/GiB with synchronous writes against 2.69–2.98 through the pool (kernel time
 * 0.66–0.83 s against 0.84–1.07), at the same 300–340 MiB/s.
 *
 * A synchronous write blocks every request of the process while it runs. Into the page cache it
 * takes well under a millisecond, but the kernel makes a writer wait when too much is dirty, and a
 * slow or network disk takes longer: one write slower than SLOW_WRITE_MS sends writes through
 * the pool for a pause, which doubles (up to LONGEST_PAUSE_MS) while slow writes keep coming back
 * soon after each pause, so a disk that stays slow costs the event loop one write per minute.
 */
export class SyncWritePolicy {
  readonly #now: () => number;
  readonly #after: number;
  #pauseMs = 0;
  #poolUntil = 0;

  /** `after`: the bytes a stream writes through the pool before its writes may be synchronous. */
  constructor(now: () => number = () => performance.now(), after = SYNC_AFTER) {
    this.#now = now;
    this.#after = after;
  }

  /** True when the next write of a stream that has written `streamed` bytes so far may run synchronously. */
  allowed(streamed: number): boolean {
    return streamed >= this.#after && this.#now() >= this.#poolUntil;
  }

  /** How long a synchronous write took (ms). */
  took(ms: number): void {
    if (ms <= SLOW_WRITE_MS) return;
    const now = this.#now();
    // Slow again within one pause after the last one ended: the disk stays slow, back off longer.
    const soonAgain = this.#pauseMs > 0 && now - this.#poolUntil < this.#pauseMs;
    this.#pauseMs = soonAgain ? Math.min(this.#pauseMs * 2, LONGEST_PAUSE_MS) : FIRST_PAUSE_MS;
    this.#poolUntil = now + this.#pauseMs;
  }

  /** The current pause (ms), 0 before any slow write. */
  get pauseMs(): number {
    return this.#pauseMs;
  }
}
