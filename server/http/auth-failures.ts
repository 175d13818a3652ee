import type { Request, Response } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { addressKey, type AuthFailureLimit } from './rate-limits.js';

/** How often one address's failures are summed up in the log, at most. */
const SUMMARY_MS = 60_000;
/** Addresses remembered for the log at once (a flood from many addresses forgets the oldest). */
const MAX_ADDRESSES = 10_000;
/** Log lines about failed authentication per minute, over all addresses; the rest are counted. */
const MAX_LINES_PER_MINUTE = 60;

interface AddressLog {
  /** Failures and refusals not yet in a log line. */
  failures: number;
  refused: number;
  since: number;
  loggedAt: number;
}

/**
 * Failed authentication is not free. Failures (a wrong, malformed or missing token, a refused
 * client certificate) are counted per client address (through the configured trust proxy, an
 * IPv6 client by its /56) in the rate-limit store, and an address past the limit gets 429 with
 * Retry-After for the rest of the window without its credentials being checked, so guessing is
 * as slow as the limit whether or not a guess is right. Successful requests are never counted:
 * a fleet behind one address is limited only while failures come from it.
 *
 * The log tells an operator without flooding: the first failure from an address at info
 * (`auth_failed`, with the reason), reaching the limit at warn (`auth_failures_limited`), and
 * while failures go on, one warn line a minute per address with the counts (`auth_failures`);
 * at most 60 such lines a minute in all (then `auth_failures_suppressed`). Tokens are never
 * logged, only the address and why it failed.
 */
export class AuthFailureGuard {
  readonly #limit: AuthFailureLimit | undefined;
  readonly #log: Logger;
  readonly #addresses = new Map<string, AddressLog>();
  #linesThisMinute = 0;
  #minuteStart = 0;
  #suppressed = 0;

  constructor(limit: AuthFailureLimit | undefined, log: Logger) {
    this.#limit = limit;
    this.#log = log;
  }

  /**
   * RATE_LIMITED when the request's address is past the limit (its credentials must not be
   * checked), else undefined. A store without `get` cannot tell: the request goes on and is
   * limited when it fails.
   */
  async refusal(req: Request): Promise<UploadError | undefined> {
    const limit = this.#limit;
    if (!limit) return undefined;
    let info: Awaited<ReturnType<typeof limit.counter.getKey>>;
    try {
      info = await limit.counter.getKey(addressKey(req));
    } catch {
      return undefined;
    }
    const now = Date.now();
    if (!info || info.totalHits < limit.limit || (info.resetTime && info.resetTime.getTime() <= now)) return undefined;
    const retryAfter = Math.max(1, Math.ceil(((info.resetTime?.getTime() ?? now + limit.windowMs) - now) / 1000));
    this.#note(req, 'refused', undefined);
    return tooMany(limit.limit, retryAfter);
  }

  /**
   * Counts a failed authentication of `req` and resolves with the error to answer: `failure`
   * (401), or RATE_LIMITED once this failure is past the limit.
   */
  failed(req: Request, res: Response, failure: UploadError): Promise<UploadError> {
    const limit = this.#limit;
    this.#note(req, 'failed', failure.message);
    if (!limit) return Promise.resolve(failure);
    return new Promise((resolve) => {
      limit.counter(req, res, (error?: unknown) => {
        // express-rate-limit leaves the count in req.rateLimit: the failure that uses up the
        // budget is the one to report; after it, refusal() turns the address away.
        const used = (req as { rateLimit?: { used?: number } }).rateLimit?.used ?? 0;
        if (used === limit.limit) this.#limited(req, limit);
        if (error instanceof UploadError && error.code === 'RATE_LIMITED') {
          resolve(tooMany(limit.limit, error.details?.retryAfter ?? Math.ceil(limit.windowMs / 1000)));
        } else {
          resolve(failure);
        }
      });
    });
  }

  #limited(req: Request, limit: AuthFailureLimit): void {
    const address = req.ip ?? req.socket.remoteAddress ?? '';
    const entry = this.#addresses.get(address);
    if (!this.#mayLog()) return;
    const seconds = limit.windowMs / 1000;
    this.#log.warn(
      { event: 'auth_failures_limited', address, failures: limit.limit, windowSeconds: seconds },
      `${limit.limit} failed authentications within ${seconds} s from ${address}: ` +
        'its further requests are refused (429) until the window ends',
    );
    if (entry) {
      entry.failures = 0;
      entry.refused = 0;
      entry.since = Date.now();
      entry.loggedAt = Date.now();
    }
  }

  #note(req: Request, what: 'failed' | 'refused', reason: string | undefined): void {
    const address = req.ip ?? req.socket.remoteAddress ?? '';
    const now = Date.now();
    let entry = this.#addresses.get(address);
    if (entry === undefined || now - entry.loggedAt > 10 * SUMMARY_MS) {
      // A new address, or one quiet for long: its first failure is worth a line of its own.
      this.#addresses.delete(address);
      entry = { failures: 0, refused: 0, since: now, loggedAt: now };
      this.#remember(address, entry);
      if (what === 'failed' && this.#mayLog()) {
        this.#log.info({ event: 'auth_failed', address, reason }, `Authentication failed from ${address}: ${reason}`);
        return;
      }
    }
    if (what === 'failed') entry.failures += 1;
    else entry.refused += 1;
    if (now - entry.loggedAt < SUMMARY_MS || !this.#mayLog()) return;
    this.#log.warn(
      {
        event: 'auth_failures',
        address,
        failures: entry.failures,
        refused: entry.refused,
        seconds: Math.round((now - entry.since) / 1000),
      },
      `${entry.failures} failed authentications and ${entry.refused} refused requests from ${address} ` +
        `in the last ${Math.round((now - entry.since) / 1000)} s`,
    );
    entry.failures = 0;
    entry.refused = 0;
    entry.since = now;
    entry.loggedAt = now;
  }

  #remember(address: string, entry: AddressLog): void {
    this.#addresses.set(address, entry);
    if (this.#addresses.size <= MAX_ADDRESSES) return;
    const oldest = this.#addresses.keys().next().value;
    if (oldest !== undefined) this.#addresses.delete(oldest);
  }

  /** Whether one more line fits this minute's budget; reports what was left out when a new minute starts. */
  #mayLog(): boolean {
    const now = Date.now();
    if (now - this.#minuteStart >= 60_000) {
      if (this.#suppressed > 0) {
        this.#log.warn(
          { event: 'auth_failures_suppressed', lines: this.#suppressed },
          `${this.#suppressed} log lines about failed authentication were left out in the last minute`,
        );
      }
      this.#minuteStart = now;
      this.#linesThisMinute = 0;
      this.#suppressed = 0;
    }
    if (this.#linesThisMinute >= MAX_LINES_PER_MINUTE) {
      this.#suppressed += 1;
      return false;
    }
    this.#linesThisMinute += 1;
    return true;
  }
}

function tooMany(limit: number, retryAfter: number): UploadError {
  return new UploadError(
    'RATE_LIMITED',
    `Too many failed authentications from this address (more than ${limit} a minute): ` +
      `retry after ${retryAfter} s, with valid credentials`,
    { details: { retryAfter } },
  );
}
