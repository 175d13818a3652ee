/** Runs tasks one at a time. */
export interface Lock {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** True while a task runs or waits here (a lock shared by replicas may not know). */
  readonly busy?: boolean;
}

/** Runs tasks one at a time per key (for example per uploader and path). */
export interface KeyedLock {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
}

/** A minimal async mutex: `run` calls are executed one at a time, in order. */
export class Mutex implements Lock {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending += 1;
    const result = this.#tail.then(async () => {
      try {
        return await task();
      } finally {
        this.#pending -= 1;
      }
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** True while a task runs or waits. */
  get busy(): boolean {
    return this.#pending > 0;
  }
}

/** One Mutex per key, dropped when idle, in this process (server replicas share AdvisoryLocks instead). */
export class KeyedMutex implements KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
