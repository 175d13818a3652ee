import { createHash } from 'node:crypto';
import pg from 'pg';

/** How long a waiter sleeps between tries, growing from the first to the last. */
const RETRY_MS = [10, 20, 50, 100, 200, 250];

/**
 * Locks shared by every server replica: PostgreSQL session-level advisory locks, held on one
 * connection of their own per process. PostgreSQL releases them when that connection ends,
 * so a replica killed with -9 never leaves one behind. A waiter never holds a connection
 * while it waits (it tries, then sleeps and tries again), so waiting replicas cannot exhaust a
 * pool and nested locks (a completion, then the path's lock) cannot deadlock on connections.
 * Within one process, callers of one key queue in memory first.
 */
export class AdvisoryLocks {
  readonly #client: pg.Client;
  readonly #queues = new Map<string, Promise<unknown>>();
  #lost: Error | undefined;

  private constructor(client: pg.Client) {
    this.#client = client;
    client.on('error', (error) => {
      // The connection broke: every lock it held is released by the server; the next call fails.
      this.#lost = error;
    });
  }

  static async connect(config: pg.ClientConfig): Promise<AdvisoryLocks> {
    const client = new pg.Client(config);
    await client.connect();
    return new AdvisoryLocks(client);
  }

  /** Runs `task` holding the lock `key` (waiting for it), whichever process holds it now. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.#queued(key, async () => {
      for (let attempt = 0; !(await this.#try(key)); attempt += 1)
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
      try {
        return await task();
      } finally {
        await this.#unlock(key);
      }
    });
  }

  /** Runs `task` holding `key` if no one holds it now; resolves undefined (without running it) otherwise. */
  runIfFree<T>(key: string, task: () => Promise<T>): Promise<T | undefined> {
    return this.#queued(key, async () => {
      if (!(await this.#try(key))) return undefined;
      try {
        return await task();
      } finally {
        await this.#unlock(key);
      }
    });
  }

  async close(): Promise<void> {
    await this.#client.end().catch(() => undefined);
  }

  async #try(key: string): Promise<boolean> {
    if (this.#lost) throw new Error(`the lock connection to the database was lost: ${this.#lost.message}`);
    const { rows } = await this.#client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked',
      [advisoryLockId(key)],
    );
    return rows[0]?.locked === true;
  }

  async #unlock(key: string): Promise<void> {
    if (this.#lost) return;
    await this.#client.query('SELECT pg_advisory_unlock($1::bigint)', [advisoryLockId(key)]);
  }

  #queued<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.catch(() => undefined);
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return result;
  }
}

/**
 * The 64-bit advisory lock number of a key (any string: keys hold uploader names and paths,
 * which PostgreSQL text could not carry when they contain NUL), as a decimal string.
 */
export function advisoryLockId(key: string): string {
  return createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}
