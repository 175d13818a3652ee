import type { RequestHandler } from 'express';
import type { Caller } from '../http/auth.js';
import type { FleetView } from '../fleet/fleet-view.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';

/** Answers that are a client's normal "no" (a lookup that finds nothing), not failures to show. */
const NOT_FAILURES = new Set(['FILE_NOT_FOUND']);
/** The fleet view's own routes: a viewer that is not signed in is no robot's failure. */
const VIEWER_ROUTES = /^\/(?:$|dashboard|metrics|v1\/(?:events|fleet|bags|dashboard))/;

/**
 * The first middleware: when an answer is sent (or the connection closes first), reports the
 * request to the metrics (duration by route pattern and status, refused chunks, rate limits,
 * auth failures) and to the fleet view (the uploader was seen; an error answer is a failure
 * shown on the dashboard). The route is Express's pattern, never the raw path, so labels stay
 * few whatever clients send.
 */
export function observeRequests(fleet: FleetView, metrics: ServerMetrics): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    let reported = false;
    const report = (): void => {
      if (reported) return;
      reported = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = typeof req.route?.path === 'string' ? req.route.path : 'unmatched';
      const status = res.headersSent ? res.statusCode : 0;
      const code = typeof res.locals.errorCode === 'string' ? res.locals.errorCode : undefined;
      metrics.observeRequest({ method: req.method, route, status, code, seconds });
      const caller = res.locals.caller as Caller | undefined;
      if (caller) fleet.seen(caller.uploader);
      if (code === undefined || NOT_FAILURES.has(code) || VIEWER_ROUTES.test(req.path)) return;
      const message = typeof res.locals.errorMessage === 'string' ? res.locals.errorMessage : code;
      fleet.failed({
        uploader: caller?.uploader ?? null,
        code,
        status,
        message: message.length > 300 ? `${message.slice(0, 300)}…` : message,
        route: `${req.method} ${route}`,
      });
    };
    res.once('finish', report);
    res.once('close', report);
    next();
  };
}
