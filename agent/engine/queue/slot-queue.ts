import PQueue from 'p-queue';

/** Seed priorities: 1 goes first, 10 last, 5 by default. */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 10;
export const DEFAULT_PRIORITY = 5;

/** A held concurrency slot; `release()` is idempotent. */
export interface Slot {
  release(): void;
}

/**
 * The concurrency slots (`maxConcurrentUploads` files at a time), granted by p-queue in order.
 * p-queue runs the *greatest* priority first, so an upload's seed priority `p` (lower first)
 * and its queue sequence number `seq` (FIFO within a priority) map to `-(p * 2^32 + seq)`: a
 * file that gives its slot back while it waits (backoff, Retry-After, pause) gets it back
 * ahead of files queued after it. The queue is paused while the engine is paused, offline or
 * stopped, so no slot is granted then.
 */
export class SlotQueue {
  readonly #queue: PQueue;

  constructor(concurrency: number) {
    this.#queue = new PQueue({ concurrency, autoStart: false });
  }

  set concurrency(value: number) {
    this.#queue.concurrency = value;
  }

  get concurrency(): number {
    return this.#queue.concurrency;
  }

  /** Slots held now. */
  get held(): number {
    return this.#queue.pending;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#queue.size;
  }

  /** Grants slots (again). */
  open(): void {
    this.#queue.start();
  }

  /** Stops granting slots; held slots stay held until released. */
  close(): void {
    this.#queue.pause();
  }

  get isOpen(): boolean {
    return !this.#queue.isPaused;
  }

  /**
   * Waits for a slot; rejects with the signal's reason if it aborts first. (The signal is not
   * given to p-queue: p-queue would also free a slot that is already held when it aborts. An
   * abandoned request stays queued and gives its slot back at once when its turn comes.)
   */
  acquire(priority: number, seq: number, signal?: AbortSignal): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let abandoned = false;
      const onAbort = (): void => {
        abandoned = true;
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.#queue.add(
        () =>
          new Promise<void>((done) => {
            signal?.removeEventListener('abort', onAbort);
            if (abandoned) {
              done();
              return;
            }
            let released = false;
            resolve({
              release: () => {
                if (released) return;
                released = true;
                done();
              },
            });
          }),
        { priority: queuePriority(priority, seq) },
      );
    });
  }
}

export function queuePriority(priority: number, seq: number): number {
  return -(priority * 2 ** 32 + seq);
}
