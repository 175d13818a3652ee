import type { Request, RequestHandler, Response } from 'express';
import { type ClientRateLimitInfo, MemoryStore, type Options, type Store } from 'express-rate-limit';
import { UploadError } from '../../common/errors/upload-error.js';
import { MAX_CHUNK_SIZE } from '../../common/protocol/native-protocol.js';

/** Bytes are counted in units of this size; every request counts as at least one. */
export const UPLOAD_RATE_UNIT = 64 * 1024;
const WINDOW_MS = 60_000;

/**
 * An express-rate-limit store that can count several hits in one call (a shared store does it
 * in one round trip). Stores without it are incremented once per unit.
 */
export interface WeightedStore extends Store {
  incrementBy?(key: string, amount: number): Promise<ClientRateLimitInfo>;
}

export interface UploadRateLimitOptions {
  /** MiB per second, averaged over a minute. */
  mibPerSecond: number;
  /** Where the counts live: the rate limits' store (shared by replicas), or memory when undefined. */
  store: WeightedStore | undefined;
  /** The counter's key of a request (the uploader, or the client address without credentials). */
  key: (req: Request, res: Response) => string;
  /** How the refusal names the setting that raises the limit (raiseHint). */
  raise: string;
}

/**
 * The bytes an uploader may send, in MiB/s averaged over a one-minute window, counted in the
 * same kind of store as the request-count limits (so replicas sharing their counters grant one
 * budget). A request counts its declared Content-Length (one without counts as the largest chunk
 * the protocol allows) before its body is read, at least 64 KiB, so a flood of tiny requests is
 * bounded too; past the budget the answer is 429 with Retry-After (the end of the window) and a
 * message naming the option. A robot on a 1 Gbit/s link never reaches the default.
 */
export function uploadRateLimit(options: UploadRateLimitOptions): RequestHandler {
  const store: WeightedStore = options.store ?? new MemoryStore();
  void store.init?.({ windowMs: WINDOW_MS } as Options);
  const limitUnits = Math.floor((options.mibPerSecond * 1024 * 1024 * (WINDOW_MS / 1000)) / UPLOAD_RATE_UNIT);
  return (req, res, next) => {
    const units = unitsOf(req);
    add(store, options.key(req, res), units).then(
      (info) => {
        if (info.totalHits <= limitUnits) {
          next();
          return;
        }
        const reset = info.resetTime?.getTime() ?? Date.now() + WINDOW_MS;
        const retryAfter = Math.max(1, Math.ceil((reset - Date.now()) / 1000));
        next(
          new UploadError(
            'RATE_LIMITED',
            `Too much data: the limit is ${options.mibPerSecond} MiB/s per uploader averaged over a minute; ` +
              `retry after ${retryAfter} s (${options.raise})`,
            { details: { retryAfter } },
          ),
        );
      },
      // A store that fails must not stop uploads: the limit protects, it is not a gate.
      () => next(),
    );
  };
}

function unitsOf(req: Request): number {
  const declared = Number(req.headers['content-length']);
  const bytes = req.headers['content-length'] !== undefined && Number.isFinite(declared) ? declared : MAX_CHUNK_SIZE;
  return Math.max(1, Math.ceil(bytes / UPLOAD_RATE_UNIT));
}

async function add(store: WeightedStore, key: string, units: number): Promise<ClientRateLimitInfo> {
  if (store.incrementBy) return store.incrementBy(key, units);
  let info = await store.increment(key);
  for (let i = 1; i < units; i += 1) info = await store.increment(key);
  return info;
}
