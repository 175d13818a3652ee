import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { serverOptions, type ServerConfig } from '../config/server-options.js';
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
  type LimitKey =
    | 'rateLimitInit'
    | 'rateLimitChunk'
    | 'rateLimitFinalize'
    | 'rateLimitList'
    | 'rateLimitHourly'
    | 'rateLimitDaily'
    | 'rateLimitSessions'
    | 'rateLimitChunks'
    | 'rateLimitComplete'
    | 'rateLimitNative'
    | 'rateLimitAuthFailures';
  /**
   * One limiter; every limit of the server is made here, so they share one kind of store. Its
   * refusal names the server setting `key` that raises the limit: a robot's operator reading the
   * agent's log can pass it on to whoever runs the server. A shared store that fails lets the
   * request through (a database hiccup must not refuse robots).
   */
  const limiter = (
    name: string,
    key: LimitKey,
    windowMs: number,
    keyGenerator: (req: Request, res: Response) => string,
  ): RateLimitRequestHandler => {
    const limit = config[key];
    const names = serverOptions.names(key);
    const raise = `the server's ${names.flag} (${names.env}) raises it, 0 or --no-rate-limit turns it off`;
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
              `${describeWindow(windowMs)}; retry after ${retryAfter} s (${raise})`,
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
  const make = (name: string, key: LimitKey, windowMs: number): RequestHandler[] => {
    if (!config.rateLimit || config[key] === 0) return [];
    return [
      limiter(name, key, windowMs, (req, res) => {
        const caller = res.locals.caller as Caller | undefined;
        return caller?.authenticated ? `uploader:${caller.uploader}` : addressKey(req);
      }),
    ];
  };
  const authFailureLimit = config.rateLimitAuthFailures;
  return {
    legacyInit: make('POST /upload/init', 'rateLimitInit', HOUR),
    legacyChunk: make('POST /upload/chunk', 'rateLimitChunk', MINUTE),
    legacyFinalize: make('POST /upload/finalize', 'rateLimitFinalize', HOUR),
    legacyOther: [
      ...make('legacy API requests', 'rateLimitHourly', HOUR),
      ...make('legacy API requests', 'rateLimitDaily', DAY),
    ],
    list: make('GET /uploads', 'rateLimitList', MINUTE),
    nativeCreate: make('POST /v1/sessions', 'rateLimitSessions', HOUR),
    nativeChunk: make('chunk uploads', 'rateLimitChunks', MINUTE),
    nativeComplete: make('completions', 'rateLimitComplete', HOUR),
    nativeOther: make('native requests', 'rateLimitNative', HOUR),
    authFailures:
      config.rateLimit && authFailureLimit > 0
        ? {
            counter: limiter('failed authentications', 'rateLimitAuthFailures', MINUTE, (req) => addressKey(req)),
            limit: authFailureLimit,
            windowMs: MINUTE,
          }
        : undefined,
  };
}

function describeWindow(windowMs: number): string {
  return windowMs === MINUTE ? 'minute' : windowMs === HOUR ? 'hour' : 'day';
}
