import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { raiseHint, type ServerConfig } from '../config/server-options.js';
import type { Caller } from './auth.js';
import type { RateLimitStores } from './shared-rate-limit-store.js';
import { uploadRateLimit } from './upload-rate-limit.js';

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
  /** The bytes per second of an uploader (native chunk and whole-file PUTs). */
  uploadRate: RequestHandler[];
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

/** The key of a request's counters: its uploader when it has credentials, else its client address. */
function callerKey(req: Request, res: Response): string {
  const caller = res.locals.caller as Caller | undefined;
  return caller?.authenticated ? `uploader:${caller.uploader}` : addressKey(req);
}

/** Whether the request came with valid credentials (a token or a client certificate). */
function isAuthenticated(res: Response): boolean {
  return (res.locals.caller as Caller | undefined)?.authenticated === true;
}

/**
 * The rate limits (express-rate-limit; each limiter takes its store from `stores`, memory when it
 * gives none), and the failed-authentication limit per client address (used by auth.ts through
 * auth-failures.ts). The legacy API's routes keep the Python dashboard's numbers, per uploader
 * with credentials (so a fleet behind one NAT is not throttled as one client) and per client
 * address otherwise. The native routes count requests only for callers without credentials (per
 * address); an authenticated uploader is limited by what costs the server: its bytes per second
 * (`rateLimitUploadRate`) and its open sessions (`maxOpenSessions`, checked where sessions are
 * created), with defaults a robot on a 1 Gbit/s link never reaches. A refusal is 429 with
 * Retry-After and the JSON error body naming the option that raises the limit. `/health` has none.
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
    anonymousOnly = false,
  ): RateLimitRequestHandler => {
    const limit = config[key];
    const store = stores(`${name} per ${describeWindow(windowMs)}`);
    const raise = raiseHint(key);
    return rateLimit({
      windowMs,
      limit,
      ...(store ? { store, passOnStoreError: true } : {}),
      ...(anonymousOnly ? { skip: (_req: Request, res: Response) => isAuthenticated(res) } : {}),
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
  const make = (name: string, key: LimitKey, windowMs: number, anonymousOnly = false): RequestHandler[] => {
    if (!config.rateLimit || config[key] === 0) return [];
    return [limiter(name, key, windowMs, callerKey, anonymousOnly)];
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
    nativeCreate: make('POST /v1/sessions', 'rateLimitSessions', HOUR, true),
    nativeChunk: make('chunk uploads', 'rateLimitChunks', MINUTE, true),
    nativeComplete: make('completions', 'rateLimitComplete', HOUR, true),
    nativeOther: make('native requests', 'rateLimitNative', HOUR, true),
    uploadRate:
      config.rateLimit && config.rateLimitUploadRate > 0
        ? [
            uploadRateLimit({
              mibPerSecond: config.rateLimitUploadRate,
              store: stores('uploaded bytes per minute'),
              key: callerKey,
              raise: raiseHint('rateLimitUploadRate'),
            }),
          ]
        : [],
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
