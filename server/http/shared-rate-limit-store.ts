import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';

/** Counters shared by server replicas (PostgresSessionStore has them), for SharedRateLimitStore. */
export interface SharedCounters {
  /** Counts `amount` (default 1) hits of `key` in its window (a new one of `windowMs` starts once the last ended). */
  hitCounter(key: string, windowMs: number, now: number, amount?: number): Promise<{ hits: number; resetAt: number }>;
  /** The count of `key` in its current window; undefined when it has none. */
  getCounter(key: string, now: number): Promise<{ hits: number; resetAt: number } | undefined>;
  unhitCounter(key: string): Promise<void>;
  resetCounter(key: string): Promise<void>;
}

/**
 * Gives each limiter (by name) a store; undefined: express-rate-limit's memory store (one
 * process). Any limiter of the server takes its store from here, so that with replicas every
 * limit is one budget for all of them.
 */
export type RateLimitStores = (name: string) => Store | undefined;

/**
 * An express-rate-limit store whose counters live in the shared database, so that N replicas
 * grant one budget, not N: one round trip per request (an upsert that starts a new window when
 * the last one ended). Each limiter has its own name, which prefixes its keys.
 */
export class SharedRateLimitStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  readonly #counters: SharedCounters;
  #windowMs = 60_000;

  constructor(counters: SharedCounters, name: string) {
    this.#counters = counters;
    this.prefix = `${name}:`;
  }

  init(options: Options): void {
    this.#windowMs = options.windowMs;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const { hits, resetAt } = await this.#counters.hitCounter(this.prefix + key, this.#windowMs, Date.now());
    return { totalHits: hits, resetTime: new Date(resetAt) };
  }

  /** Counts `amount` hits in one round trip (the byte-rate limit counts a request's 64 KiB units). */
  async incrementBy(key: string, amount: number): Promise<ClientRateLimitInfo> {
    const { hits, resetAt } = await this.#counters.hitCounter(this.prefix + key, this.#windowMs, Date.now(), amount);
    return { totalHits: hits, resetTime: new Date(resetAt) };
  }

  /** Read without counting (the failed-authentication limit asks before it checks credentials). */
  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const counter = await this.#counters.getCounter(this.prefix + key, Date.now());
    return counter ? { totalHits: counter.hits, resetTime: new Date(counter.resetAt) } : undefined;
  }

  async decrement(key: string): Promise<void> {
    await this.#counters.unhitCounter(this.prefix + key);
  }

  async resetKey(key: string): Promise<void> {
    await this.#counters.resetCounter(this.prefix + key);
  }
}

/** The stores of replicas sharing `counters`. */
export function sharedRateLimitStores(counters: SharedCounters): RateLimitStores {
  return (name) => new SharedRateLimitStore(counters, name);
}
