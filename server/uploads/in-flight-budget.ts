import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';

/** Seconds a client refused for bytes in flight is told to wait (transfers in flight finish meanwhile). */
const RETRY_AFTER_SECONDS = 5;

/**
 * Bytes of upload bodies each uploader is sending at once (native chunks, whole files, legacy
 * chunk forms), counted by the most each body may hold, from when its writing starts until it
 * ends; beyond `maxBytesInFlight` a request is refused with 429 RATE_LIMITED and Retry-After
 * before it writes anything. So one uploader opening many connections cannot hold more than
 * that in unacknowledged data on the disk, whatever its sessions allow. A transfer is always
 * admitted when its uploader has nothing else in flight, so a body larger than the limit (a
 * legacy client sending a whole file as one chunk) still gets through, alone.
 */
export class InFlightBudget {
  readonly #limit: number;
  readonly #used = new Map<string, number>();

  /** `limit` 0: no limit. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Counts `bytes` for `uploader`; returns the function that gives them back (call it once the body ended). */
  reserve(uploader: string, bytes: number): () => void {
    const used = this.#used.get(uploader) ?? 0;
    if (this.#limit > 0 && used > 0 && used + bytes > this.#limit) {
      throw new UploadError(
        'RATE_LIMITED',
        `Uploader ${uploader} is already sending ${formatSize(used)}; with this ${formatSize(bytes)} ` +
          `it would pass the server's limit of ${formatSize(this.#limit)} in flight per uploader ` +
          `(maxBytesInFlight): retry when earlier transfers have finished`,
        { details: { retryAfter: RETRY_AFTER_SECONDS } },
      );
    }
    this.#used.set(uploader, used + bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#used.get(uploader) ?? bytes) - bytes;
      if (left > 0) this.#used.set(uploader, left);
      else this.#used.delete(uploader);
    };
  }

  /** Bytes `uploader` has in flight now. */
  inFlight(uploader: string): number {
    return this.#used.get(uploader) ?? 0;
  }
}
