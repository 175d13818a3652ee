import type { UploadStorage } from '../storage/upload-storage.js';

/** How long one measurement of the free space is used. */
export const FREE_SPACE_MAX_AGE_MS = 1000;

/**
 * The storage's free space for admission checks (507 before an upload starts), measured at most
 * once a second (and once for concurrent callers) instead of one `statfs` per request. Between
 * measurements every admitted upload's size is subtracted, so a burst of uploads is judged
 * against what is left after the ones before it, more strictly than one measurement per request
 * would (those do not see files that are not written yet). Writes that fail for lack of space
 * are 507 regardless, and make the next admission measure again (sawFullDisk). A storage without
 * a free-space limit (a bucket) is never short of space here.
 */
export class FreeSpaceGauge {
  readonly #storage: UploadStorage;
  readonly #maxAgeMs: number;
  #measured: { at: number; free: number } | undefined;
  #measuring: Promise<number> | undefined;
  #admitted = 0;

  constructor(storage: UploadStorage, maxAgeMs = FREE_SPACE_MAX_AGE_MS) {
    this.#storage = storage;
    this.#maxAgeMs = maxAgeMs;
  }

  /** Free bytes now, less the bytes admitted since the last measurement. */
  async available(): Promise<number> {
    if (!this.#storage.freeSpace) return Number.POSITIVE_INFINITY;
    const measured = this.#measured;
    if (measured && Date.now() - measured.at < this.#maxAgeMs) return measured.free - this.#admitted;
    this.#measuring ??= this.#storage.freeSpace().then(
      (free) => {
        this.#measured = { at: Date.now(), free };
        this.#admitted = 0;
        this.#measuring = undefined;
        return free;
      },
      (error: unknown) => {
        this.#measuring = undefined;
        throw error;
      },
    );
    return (await this.#measuring) - this.#admitted;
  }

  /**
   * A write just met a full disk (ENOSPC, EDQUOT): the last measurement is wrong, so the next
   * admission measures again instead of admitting uploads for up to a second on stale figures.
   */
  sawFullDisk(): void {
    this.#measured = undefined;
  }

  /** Counts an admitted upload of `bytes` against the free space until the next measurement. */
  admit(bytes: number): void {
    this.#admitted += bytes;
  }
}
