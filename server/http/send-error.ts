import type { Request, Response, NextFunction, ErrorRequestHandler } from 'express';
import type { ErrorResponse } from '../../common/protocol/native-protocol.js';
import { isWireErrorCode, type UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { httpStatusOf, type Api } from './error-status.js';
import { toUploadError } from './to-upload-error.js';

/** The JSON body of an error answer: `{success:false, error, code}` plus `missing`/`retryAfter`. */
export function errorBody(error: UploadError): ErrorResponse {
  const body: ErrorResponse = {
    success: false,
    error: error.message,
    code: isWireErrorCode(error.code) ? error.code : 'INTERNAL',
  };
  const missing = error.details?.missing;
  if (Array.isArray(missing)) body.missing = missing as number[];
  const retryAfter = error.details?.retryAfter;
  if (typeof retryAfter === 'number') body.retryAfter = retryAfter;
  return body;
}

/** Which API a request belongs to, for the status map (the legacy API answers 400 where we are more specific). */
export function apiOf(req: Request): Api {
  return req.path.startsWith('/v1/') || req.path === '/v1' ? 'native' : 'legacy';
}

/**
 * The last middleware: every error becomes its JSON answer with the status from the one map.
 * Server faults are logged with their cause; client mistakes at debug level.
 */
export function errorHandler(log: Logger, idleTimeoutMs: number | undefined): ErrorRequestHandler {
  const storageFull = storageFullLogger(log);
  return (raw: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const error = toUploadError(raw);
    const status = httpStatusOf(error.code, apiOf(req));
    if (error.code === 'INSUFFICIENT_STORAGE') {
      storageFull(req, error);
    } else if (status >= 500 && status !== 503) {
      log.error(
        { event: 'request_failed', method: req.method, path: req.path, err: error.cause ?? error },
        `${req.method} ${req.path} failed: ${error.message}`,
      );
    } else {
      log.debug(
        { event: 'request_refused', method: req.method, path: req.path, status, code: error.code },
        error.message,
      );
    }
    if (res.headersSent || req.socket.destroyed) {
      req.socket.destroy();
      return;
    }
    if (!req.complete && idleTimeoutMs !== undefined) {
      // The body is drained after this answer; Node would then allow the keep-alive timeout
      // between its bytes, so restore the idle timeout once the answer is out (on a server of
      // our own: a host that mounts the handler keeps its own timeouts).
      res.once('finish', () => req.socket.setTimeout(idleTimeoutMs));
    }
    const body = errorBody(error);
    if (body.retryAfter !== undefined) res.setHeader('Retry-After', String(body.retryAfter));
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
    res.status(status).json(body);
  };
}

/** How often at most a full storage is logged (with the count of requests it refused meanwhile). */
const STORAGE_FULL_LOG_INTERVAL_MS = 10_000;

/**
 * A full disk or database is a condition of the server's storage, not a fault: logged at warn as
 * `storage_full` with its cause (ENOSPC, EDQUOT, SQLITE_FULL; the refusals before an upload starts
 * have none), the first time and then at most every 10 s with the number of requests refused, so
 * a fleet retrying against a full disk cannot flood the log.
 */
function storageFullLogger(log: Logger): (req: Request, error: UploadError) => void {
  let refused = 0;
  let lastLogged = 0;
  return (req, error) => {
    refused += 1;
    const now = Date.now();
    if (now - lastLogged < STORAGE_FULL_LOG_INTERVAL_MS) return;
    lastLogged = now;
    const cause = (error.cause as { code?: unknown } | undefined)?.code;
    log.warn(
      {
        event: 'storage_full',
        method: req.method,
        path: req.path,
        cause: typeof cause === 'string' ? cause : undefined,
        refused,
      },
      `Storage full: ${error.message} (${refused} request${refused === 1 ? '' : 's'} refused with 507 so far)`,
    );
  };
}
