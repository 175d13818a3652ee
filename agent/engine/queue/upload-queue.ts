import PQueue from 'p-queue';
import { BinaryHeap } from '../../../common/collections/binary-heap.js';

/** Priorities as the Python dashboard's uploader had them: 1 goes first, 10 last, 5 by default. */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 10;
export const DEFAULT_PRIORITY = 5;

/** A held concurrency slot; `release()` is idempotent. */
export interface Slot {
  release(): void;
}

/** What the queue orders by: priority (1 first), then queue sequence number (FIFO within a priority). */
export interface QueuedUpload {
  readonly priority: number;
  readonly seq: number;
}

/**
 * How small uploads share a slot: a backlog upload of at most `fileBytes` takes the next backlog
 * uploads that are as small along in its slot, up to `uploads` together and `bytes` in all.
 */
export interface SlotSharing<T> {
  sizeOf(upload: T): number;
  limits(): { uploads: number; bytes: number; fileBytes: number };
}

/** One number that orders by priority, then seq (seq stays below 2^40; p-queue runs the larger first). */
const SEQ_SPAN = 2 ** 40;
const rankOf = (priority: number, seq: number): number => priority * SEQ_SPAN + seq;
/** The p-queue id of the backlog's stand-in, so its priority can follow the backlog's head. */
const FEEDER_ID = 'backlog';

/**
 * Which upload sends next: `concurrency` slots, granted in order of priority (lower first),
 * then queue sequence number (FIFO within a priority), never while the queue is closed (the
 * engine is paused, offline or stopped).
 *
 * Two kinds of uploads wait for a slot. The ready ones already ran and wait to go on (after a
 * backoff, a Retry-After, a pause): each waits in p-queue as a task that holds its slot until
 * released, as do the running ones. The backlog, uploads that never had a slot (thousands after
 * a day offline; the journal holds them durably), stays out of p-queue: a p-queue task costs
 * about 1 KiB, so the backlog is a heap of the upload records themselves (a pointer each), and
 * p-queue holds one stand-in for it, ranked as the backlog's best upload. When the stand-in's
 * turn comes it takes that upload, hands it its slot (`onGrant`) and queues a stand-in for the
 * next. Requests are added to p-queue together from a microtask, with p-queue held meanwhile, so
 * the best request of a burst gets the first free slot, and no slot is granted inside the caller
 * that asked or released.
 *
 * Small files share slots (with `sharing`): one whole small file is one short request whose
 * answer waits mostly for the server's fsyncs, so one file per slot leaves the link and both
 * ends idle. When a small backlog upload gets a slot, the next backlog uploads in queue order
 * that are small too ride along in the same slot (never one further back, never while a ready
 * upload waits for a slot), within a count and a byte total no larger than one large upload's
 * chunk: the memory bound per slot and the start order stay what they are. The slot is free
 * again once each of them released its share.
 */
export class UploadQueue<T extends QueuedUpload> {
  readonly #tasks: PQueue;
  readonly #backlog = new BinaryHeap<T>((a, b) => rankOf(a.priority, a.seq) < rankOf(b.priority, b.seq));
  readonly #inBacklog = new Set<T>();
  readonly #onGrant: (upload: T, slot: Slot) => void;
  readonly #sharing: SlotSharing<T> | undefined;
  /** Ready uploads' requests, added to p-queue at the next flush. */
  #incoming: { rank: number; grant: (slot: Slot) => void }[] = [];
  /** The rank of the backlog's stand-in waiting in p-queue; undefined when none waits there. */
  #feederRank: number | undefined;
  #concurrency: number;
  #open = false;
  #held = 0;
  #flushScheduled = false;

  /**
   * `onGrant`: a backlog upload's turn came; it holds `slot` until it releases it. `sharing`:
   * which backlog uploads are small enough to share a slot (none without it).
   */
  constructor(concurrency: number, onGrant: (upload: T, slot: Slot) => void, sharing?: SlotSharing<T>) {
    this.#concurrency = concurrency;
    this.#tasks = new PQueue({ concurrency, autoStart: false });
    this.#onGrant = onGrant;
    this.#sharing = sharing;
  }

  get concurrency(): number {
    return this.#concurrency;
  }

  /** Applies at once: more slots are granted, or fewer once held ones are released. */
  set concurrency(value: number) {
    this.#concurrency = value;
    this.#scheduleFlush();
  }

  /** Slots held now (a slot shared by small uploads counts once). */
  get held(): number {
    return this.#held;
  }

  /** Uploads waiting for a slot: the backlog and the ready ones (abandoned requests not yet dropped included). */
  get waiting(): number {
    return this.#backlog.size + this.#incoming.length + this.#tasks.size - (this.#feederRank === undefined ? 0 : 1);
  }

  /** Grants slots (again). */
  open(): void {
    this.#open = true;
    this.#scheduleFlush();
  }

  /** Stops granting slots; held slots stay held until released. */
  close(): void {
    this.#open = false;
    this.#tasks.pause();
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Puts an upload that never had a slot in the backlog (once: a second call is ignored). */
  enqueue(upload: T): void {
    if (this.#inBacklog.has(upload)) return;
    this.#inBacklog.add(upload);
    this.#backlog.push(upload);
    this.#scheduleFlush();
  }

  /** True while `upload` waits in the backlog. */
  has(upload: T): boolean {
    return this.#inBacklog.has(upload);
  }

  /** A backlog upload's priority was raised (a smaller number): it moves forward. */
  reprioritize(upload: T): void {
    if (!this.#inBacklog.has(upload)) return;
    this.#backlog.movedForward(upload);
    this.#scheduleFlush();
  }

  /**
   * A ready upload waits for a slot; rejects with the signal's reason if it aborts first (the
   * request is then dropped).
   */
  acquire(priority: number, seq: number, signal?: AbortSignal): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let abandoned = false;
      const onAbort = (): void => {
        abandoned = true; // its turn gives the slot straight back
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#incoming.push({
        rank: rankOf(priority, seq),
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          if (abandoned) slot.release();
          else resolve(slot);
        },
      });
      this.#scheduleFlush();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    this.#tasks.pause();
    this.#tasks.concurrency = this.#concurrency;
    const incoming = this.#incoming;
    this.#incoming = [];
    for (const request of incoming)
      void this.#tasks.add(() => this.#hold([request.grant]), { priority: -request.rank });
    this.#queueFeeder();
    if (this.#open) this.#tasks.start();
  }

  /** Makes sure p-queue holds a stand-in for the backlog's best upload, ranked as it. */
  #queueFeeder(): void {
    const head = this.#backlog.peek();
    if (head === undefined) return;
    const rank = rankOf(head.priority, head.seq);
    if (this.#feederRank === undefined) {
      this.#feederRank = rank;
      void this.#tasks.add(() => this.#feed(), { priority: -rank, id: FEEDER_ID });
    } else if (rank < this.#feederRank) {
      this.#feederRank = rank;
      this.#tasks.setPriority(FEEDER_ID, -rank);
    }
  }

  /**
   * The stand-in's turn: the backlog's best upload gets the slot (with the small ones that may
   * share it), and the next one is queued in its place.
   */
  #feed(): Promise<void> {
    this.#feederRank = undefined;
    const upload = this.#backlog.pop();
    if (upload === undefined) return Promise.resolve();
    this.#inBacklog.delete(upload);
    const group = [upload, ...this.#companions(upload)];
    const held = this.#hold(group.map((member) => (slot: Slot) => this.#onGrant(member, slot)));
    this.#queueFeeder();
    return held;
  }

  /** The backlog uploads, next in order, that share the slot `first` was granted (see the class comment). */
  #companions(first: T): T[] {
    const sharing = this.#sharing;
    if (!sharing) return [];
    const limits = sharing.limits();
    let bytes = sharing.sizeOf(first);
    if (limits.uploads <= 1 || bytes > limits.fileBytes) return [];
    // A ready upload waiting for a slot (it ran before) goes first: nothing rides past it.
    if (this.#incoming.length > 0 || this.#tasks.size > 0) return [];
    const companions: T[] = [];
    for (let next = this.#backlog.peek(); next !== undefined; next = this.#backlog.peek()) {
      const size = sharing.sizeOf(next);
      if (companions.length + 1 >= limits.uploads || size > limits.fileBytes || bytes + size > limits.bytes) break;
      this.#backlog.pop();
      this.#inBacklog.delete(next);
      companions.push(next);
      bytes += size;
    }
    return companions;
  }

  /** A p-queue task that holds one slot, shared by the holders `grants` name, until each called `release()`. */
  #hold(grants: ((slot: Slot) => void)[]): Promise<void> {
    return new Promise<void>((done) => {
      this.#held += 1;
      let holders = grants.length;
      for (const grant of grants) {
        let released = false;
        grant({
          release: () => {
            if (released) return;
            released = true;
            holders -= 1;
            if (holders > 0) return;
            this.#held -= 1;
            done();
          },
        });
      }
    });
  }
}
