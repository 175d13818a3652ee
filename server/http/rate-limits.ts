import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';
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
  /** Failed authentications per client address (see auth-failures.ts); undefined when off. */
  authFailures: AuthFailureLimit | undefined;
}

/** The failed-authentication limit: its counter (an express-rate-limit limiter), how many, per how long. */
export interface AuthFailureLimit {
  /** Counts one failure when called; answers RATE_LIMITED (via next) once there are more than `limit`. */
  counter: RateLimitRequestHandler;
  limit: number;
  windowMs: number;
}

/** The key of a client address: the address (through the configured trust proxy), IPv6 by /56 network. */
export function addressKey(req: Request): string {
  return `ip:${ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? '')}`;
}

/**
 * The rate limits (express-rate-limit: in memory, or in the replicas' shared database when
 * `stores` gives one per limiter), and the failed-authentication limit per client address (used
 * by auth.ts through auth-failures.ts). The legacy API's routes keep the Python dashboard's numbers;
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
  /**
   * One limiter; every limit of the server is made here, so they share one kind of store. A
   * shared store that fails lets the request through (a database hiccup must not refuse robots).
   */
  const limiter = (
    name: string,
    limit: number,
    windowMs: number,
    keyGenerator: (req: Request, res: Response) => string,
  ): RateLimitRequestHandler => {
    const store = stores(`${name} per ${describeWindow(windowMs)}`);
    return rateLimit({
      windowMs,
      limit,
      ...(store ? { store, passOnStoreError: true } : {}),
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      keyGenerator,
      handler: (req, _res, next) => {
        const reset = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
        const retryAfter = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000));
        next(
          new UploadError(
            'RATE_LIMITED',
            `Too many requests: the limit for ${name} is ${limit} per ` +
              `${describeWindow(windowMs)}; retry after ${retryAfter} s`,
            { details: { retryAfter } },
          ),
        );
      },
      validate: { xForwardedForHeader: false, trustProxy: false },
      logger: {
        error: (error, message) => log.error({ err: error }, message ?? 'rate limiter error'),
        warn: (error, message) => log.warn({ err: error }, message ?? 'rate limiter warning'),
      },
    });
  };
  const make = (name: string, limit: number, windowMs: number): RequestHandler[] => {
    if (!config.rateLimit || limit === 0) return [];
    return [
      limiter(name, limit, windowMs, (req, res) => {
        const caller = res.locals.caller as Caller | undefined;
        return caller?.authenticated ? `uploader:${caller.uploader}` : addressKey(req);
      }),
    ];
  };
  const authFailureLimit = config.rateLimitAuthFailures;
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
    authFailures:
      config.rateLimit && authFailureLimit > 0
        ? {
            counter: limiter('failed authentications', authFailureLimit, MINUTE, (req) => addressKey(req)),
            limit: authFailureLimit,
            windowMs: MINUTE,
          }
        : undefined,
  };
}

function describeWindow(windowMs: number): string {
  return windowMs === MINUTE ? 'minute' : windowMs === HOUR ? 'hour' : 'day';
}
