import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import type { ServerConfig } from '../config/server-options.js';
import type { Caller } from './auth.js';
import type { RateLimitStores } from './shared-rate-limit-store.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The limiter chain of each route (an empty chain when limits are off). */
export interface RouteLimits {
  legacyInit: RequestHandler[];
  legacyChunk: RequestHandler[];
  legacyFinalize: RequestHandler[];
  legacyOther: RequestHandler[];
  list: RequestHandler[];
  nativeCreate: RequestHandler[];
  nativeChunk: RequestHandler[];
  nativeComplete: RequestHandler[];
  nativeOther: RequestHandler[];
}

/**
 * The rate limits (express-rate-limit: in memory, or in the replicas' shared database when
 * `stores` gives one per limiter). The legacy API's routes keep the Python dashboard's numbers;
 * the native routes have their own, sized so a robot uploading a split a minute is never
 * slowed. Limits count per uploader when the caller has a token (so a fleet behind one NAT is
 * not throttled as one client) and per IP otherwise. A refusal is 429 with Retry-After and the
 * JSON error body. `/health` has none.
 */
export function createRouteLimits(
  config: ServerConfig,
  log: Logger,
  stores: RateLimitStores = () => undefined,
): RouteLimits {
  const make = (name: string, limit: number, windowMs: number): RequestHandler[] => {
    if (!config.rateLimit || limit === 0) return [];
    const store = stores(`${name} per ${describeWindow(windowMs)}`);
    return [
      rateLimit({
        windowMs,
        limit,
        ...(store ? { store, passOnStoreError: true } : {}),
        standardHeaders: 'draft-7',
        legacyHeaders: false,
        keyGenerator: (req, res) => {
          const caller = res.locals.caller as Caller | undefined;
          return caller?.authenticated
            ? `uploader:${caller.uploader}`
            : `ip:${ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? '')}`;
        },
        handler: (req, _res, next) => {
          const reset = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
          const retryAfter = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000));
          next(
            new UploadError(
              'RATE_LIMITED',
              `Too many requests: the limit for ${name} is ${limit} per ` +
                `${describeWindow(windowMs)}; retry after ${retryAfter} s`,
              {
                details: { retryAfter },
              },
            ),
          );
        },
        validate: { xForwardedForHeader: false, trustProxy: false },
        logger: {
          error: (error, message) => log.error({ err: error }, message ?? 'rate limiter error'),
          warn: (error, message) => log.warn({ err: error }, message ?? 'rate limiter warning'),
        },
      }),
    ];
  };
  return {
    legacyInit: make('POST /upload/init', config.rateLimitInit, HOUR),
    legacyChunk: make('POST /upload/chunk', config.rateLimitChunk, MINUTE),
    legacyFinalize: make('POST /upload/finalize', config.rateLimitFinalize, HOUR),
    legacyOther: [
      ...make('legacy API requests', config.rateLimitHourly, HOUR),
      ...make('legacy API requests', config.rateLimitDaily, DAY),
    ],
    list: make('GET /uploads', config.rateLimitList, MINUTE),
    nativeCreate: make('POST /v1/sessions', config.rateLimitSessions, HOUR),
    nativeChunk: make('chunk uploads', config.rateLimitChunks, MINUTE),
    nativeComplete: make('completions', config.rateLimitComplete, HOUR),
    nativeOther: make('native requests', config.rateLimitNative, HOUR),
  };
}

function describeWindow(windowMs: number): string {
  return windowMs === MINUTE ? 'minute' : windowMs === HOUR ? 'hour' : 'day';
}
