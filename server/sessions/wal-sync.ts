import { syncFile } from '../../common/fs/sync-folder.js';

/**
 * Group commit for SQLite in WAL mode. The database runs with `synchronous = NORMAL`: a commit
 * writes its frames to the write-ahead log (`<db>-wal`) without an fsync, which keeps the
 * database consistent across power loss but not durable (the last commits may be lost). FULL
 * would fsync the log inside every commit, on the event loop's thread, once per commit. Instead
 * this fsyncs the log from libuv's thread pool after the commit: fsync flushes every write made
 * to the file before it started, whichever descriptor made it, so a commit whose writes returned
 * is durable once an fsync that started after it finished. That is what FULL adds to NORMAL
 * ("an additional sync of the WAL file after each transaction commit", SQLite's documentation),
 * except that commits arriving while an fsync runs share the next one, and the event loop never
 * waits for the disk.
 *
 * Each change is numbered (`changed()`); `durable(n)` resolves once change n is on disk.
 */
export class WalSync {
  readonly #file: string;
  #changes = 0;
  #durableUpTo = 0;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(walFile: string) {
    this.#file = walFile;
  }

  /** Counts a committed change (call right after the commit); returns its number. */
  changed(): number {
    this.#changes += 1;
    return this.#changes;
  }

  /** The number of the last change counted: everything up to it must be durable before it is relied on. */
  get latest(): number {
    return this.#changes;
  }

  /** Resolves once change `n` (and every change before it) is durable; rejects with the fsync's error. */
  async durable(n: number): Promise<void> {
    while (this.#durableUpTo < n) await this.#sync();
  }

  /** An fsync that starts after this call (sharing one queued behind the running one). */
  #sync(): Promise<void> {
    if (!this.#running) {
      const upTo = this.#changes;
      this.#running = syncFile(this.#file)
        .then(() => {
          this.#durableUpTo = Math.max(this.#durableUpTo, upTo);
        })
        .finally(() => {
          this.#running = undefined;
        });
      return this.#running;
    }
    this.#queued ??= this.#running.then(noop, noop).then(() => {
      this.#queued = undefined;
      return this.#sync();
    });
    return this.#queued;
  }
}

function noop(): void {}
