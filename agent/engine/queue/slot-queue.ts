/** Seed priorities: 1 goes first, 10 last, 5 by default. */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 10;
export const DEFAULT_PRIORITY = 5;

/** A held concurrency slot; `release()` is idempotent. */
export interface Slot {
  release(): void;
}

interface Waiter {
  /** Seed priority, then queue sequence number, then arrival: the smallest goes first. */
  readonly priority: number;
  readonly seq: number;
  readonly arrival: number;
  grant: ((slot: Slot) => void) | undefined;
}

/**
 * The concurrency slots (`maxConcurrentUploads` files at a time), granted in order of seed
 * priority `p` (lower first), then queue sequence number `seq` (FIFO within a priority): a file
 * that gives its slot back while it waits (backoff, Retry-After, pause) gets it back ahead of
 * files queued after it. No slot is granted while the queue is closed (the engine is paused,
 * offline or stopped).
 *
 * A binary heap of waiters: every queued file waits here for its first slot, so a waiter is kept
 * small (an object and a callback with request(); p-queue, used before, cost about 1.7 KiB per
 * waiter).
 */
export class SlotQueue {
  #concurrency: number;
  #held = 0;
  #open = false;
  #arrivals = 0;
  readonly #heap: Waiter[] = [];
  #pumping = false;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  set concurrency(value: number) {
    this.#concurrency = value;
    this.#schedulePump();
  }

  get concurrency(): number {
    return this.#concurrency;
  }

  /** Slots held now. */
  get held(): number {
    return this.#held;
  }

  /** Callers waiting for a slot (abandoned requests not yet dropped included). */
  get waiting(): number {
    return this.#heap.length;
  }

  /** Grants slots (again). */
  open(): void {
    this.#open = true;
    this.#schedulePump();
  }

  /** Stops granting slots; held slots stay held until released. */
  close(): void {
    this.#open = false;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Waits for a slot; rejects with the signal's reason if it aborts first (the request is then dropped). */
  acquire(priority: number, seq: number, signal?: AbortSignal): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const waiter: Waiter = { priority, seq, arrival: (this.#arrivals += 1), grant: undefined };
      const onAbort = (): void => {
        waiter.grant = undefined; // skipped when its turn comes
        reject(signal!.reason);
      };
      waiter.grant = (slot) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(slot);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#push(waiter);
      this.#schedulePump();
    });
  }

  /**
   * Asks for a slot and calls `onGrant` with it when its turn comes: the lightest way to wait
   * (no promise), for the many queued files that wait for their first slot.
   */
  request(priority: number, seq: number, onGrant: (slot: Slot) => void): void {
    this.#push({ priority, seq, arrival: (this.#arrivals += 1), grant: onGrant });
    this.#schedulePump();
  }

  /** Grants are made from a microtask (never inside the caller that released or asked). */
  #schedulePump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    queueMicrotask(() => {
      this.#pumping = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#open && this.#held < this.#concurrency && this.#heap.length > 0) {
      const waiter = this.#pop()!;
      const grant = waiter.grant;
      if (!grant) continue; // abandoned
      waiter.grant = undefined;
      this.#held += 1;
      let released = false;
      grant({
        release: () => {
          if (released) return;
          released = true;
          this.#held -= 1;
          this.#schedulePump();
        },
      });
    }
  }

  #push(waiter: Waiter): void {
    const heap = this.#heap;
    heap.push(waiter);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  #pop(): Waiter | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
        index = smallest;
      }
    }
    return top;
  }
}

function before(a: Waiter, b: Waiter): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  if (a.seq !== b.seq) return a.seq < b.seq;
  return a.arrival < b.arrival;
}
