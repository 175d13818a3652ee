import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { UploadError } from '../common/errors/upload-error.js';
import { routes } from '../common/protocol/native-protocol.js';
import { authenticate, requireToken, type Credentials } from './http/auth.js';
import { checkedJsonBody, jsonBody } from './http/json-body.js';
import type { RouteLimits } from './http/rate-limits.js';
import { checkRequestChecksumFirst } from './http/request-checksum.js';
import { errorHandler } from './http/send-error.js';
import type { Logger } from './logging/logger.js';
import { healthRoute } from './routes/health.js';
import { type ReadinessChecks, readyRoute } from './routes/ready.js';
import { legacyFinalizeRoute } from './routes/legacy/finalize-upload.js';
import { legacyInitRoute } from './routes/legacy/init-upload.js';
import { listUploadsRoute } from './routes/legacy/list-uploads.js';
import { legacyChunkRoute } from './routes/legacy/upload-chunk.js';
import { legacyStatusRoute } from './routes/legacy/upload-status.js';
import { cancelSessionRoute } from './routes/native/cancel-session.js';
import { completeSessionRoute } from './routes/native/complete-session.js';
import { createSessionRoute } from './routes/native/create-session.js';
import { getFileRoute } from './routes/native/get-file.js';
import { getSessionRoute } from './routes/native/get-session.js';
import { putChunkRoute } from './routes/native/put-chunk.js';
import { putFileRoute } from './routes/native/put-file.js';
import type { UploadContext } from './uploads/upload-context.js';
import type { FleetView } from './fleet/fleet-view.js';
import type { ViewerAccess } from './http/viewer-access.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import type { EventStreamHub } from './routes/dashboard/event-stream.js';
import { dashboardPage } from './routes/dashboard/page.js';
import {
  bagRoute,
  fleetRoute,
  listBagsRoute,
  loginRoute,
  logoutRoute,
  metricsRoute,
  sessionRoute,
} from './routes/dashboard/viewer-routes.js';
import { observeRequests } from './routes/request-observer.js';

export interface AppOptions {
  context: UploadContext;
  /** Tokens, client certificates, anonymous access and the failed-authentication limit. */
  credentials: Credentials;
  /**
   * The server runs open (no tokens) on loopback only: whoever can reach it is on this machine,
   * so `GET /uploads` may list the anonymous uploader's files without a token.
   */
  openOnLoopback: boolean;
  limits: RouteLimits;
  log: Logger;
  /** The server's idleTimeout, in milliseconds; undefined when the app is mounted in a host's server. */
  idleTimeoutMs: number | undefined;
  /** Express "trust proxy" value. */
  trustProxy: boolean | number | string;
  /** The fleet view (dashboard, bags, metrics) and who may read it. */
  fleet: FleetView;
  metrics: ServerMetrics;
  viewers: ViewerAccess;
  streams: EventStreamHub;
  /** GET /ready's checks, and whether the server is draining. */
  readiness: ReadinessChecks;
}

/**
 * The route table: one handler per operation (routes/native/*, routes/legacy/*), each preceded
 * by authentication, its rate limits and, for JSON routes, the JSON body parser. Unknown routes
 * are 404 JSON; every error goes through the one error handler. Paths are relative to wherever
 * the app is mounted.
 */
export function createApp(options: AppOptions): Express {
  const { context, limits } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy);
  const auth = authenticate(options.credentials);
  type Handler = RequestHandler | ErrorRequestHandler;
  const chain = (...handlers: (Handler | Handler[])[]): Handler[] => handlers.flat();
  const { fleet, metrics, viewers, streams } = options;

  app.use(observeRequests(fleet, metrics));

  // This server never upgrades a connection. Node answers a request that asks to upgrade as a
  // normal one, but then no longer reports a malformed request that follows on the same
  // connection: no 400, no close, the connection hangs until a timeout. Such a connection is
  // closed after its answer instead.
  // While draining (SIGTERM), every answer closes its connection, so keep-alive clients open
  // their next one elsewhere (through the load balancer, to another replica).
  app.use((req, res, next) => {
    if (req.headers.upgrade !== undefined || options.readiness.draining()) res.setHeader('Connection', 'close');
    next();
  });

  const nativeApi = context.config.nativeApi;
  app.get(routes.health, healthRoute(nativeApi));
  app.get('/ready', readyRoute(options.readiness, options.log));

  // With nativeApi off only the legacy API is served (its routes below): /v1 is 404, as on a
  // server that never had it, so agents can be tried against a legacy-only server.
  if (nativeApi) {
    // Native routes check X-Request-Checksum when it is sent: raw-body and body-less routes before
    // anything is read, JSON routes once their bounded body is read (see http/request-checksum.ts).
    const checksum = checkRequestChecksumFirst;
    app.post(routes.sessions, chain(auth, limits.nativeCreate, checkedJsonBody, createSessionRoute(context)));
    app.get('/v1/sessions/:id', chain(auth, limits.nativeOther, checksum, getSessionRoute(context)));
    app.put(
      '/v1/sessions/:id/chunks/:index',
      chain(auth, limits.nativeChunk, limits.uploadRate, checksum, putChunkRoute(context)),
    );
    app.post(
      '/v1/sessions/:id/complete',
      chain(auth, limits.nativeComplete, checkedJsonBody, completeSessionRoute(context)),
    );
    app.delete('/v1/sessions/:id', chain(auth, limits.nativeOther, checksum, cancelSessionRoute(context)));
    app.get('/v1/files/*path', chain(viewers.viewerOr(auth), limits.nativeOther, checksum, getFileRoute(context)));
    app.put('/v1/files/*path', chain(auth, limits.nativeCreate, limits.uploadRate, checksum, putFileRoute(context)));
  }

  app.post('/upload/init', chain(auth, limits.legacyInit, jsonBody, legacyInitRoute(context)));
  app.post('/upload/chunk', chain(auth, limits.legacyChunk, legacyChunkRoute(context)));
  app.post('/upload/finalize', chain(auth, limits.legacyFinalize, jsonBody, legacyFinalizeRoute(context)));
  app.get('/upload/status/:uploadId', chain(auth, limits.legacyOther, legacyStatusRoute(context)));
  app.get(
    '/uploads',
    chain(auth, ...(options.openOnLoopback ? [] : [requireToken]), limits.list, listUploadsRoute(context)),
  );

  // The fleet view: the dashboard page lives at dashboard/ (its asset and API links are relative,
  // so it also works where the handler is mounted under a prefix); / and /dashboard lead there.
  const page = dashboardPage();
  // Express matches /dashboard and /dashboard/ alike (non-strict routing): only the path with
  // the slash is the page, so that its relative links resolve under dashboard/.
  app.get(['/', '/dashboard'], (req, res, next) => {
    if (req.path.endsWith('/dashboard/')) page.index(req, res, next);
    else res.redirect(302, 'dashboard/');
  });
  app.use('/dashboard/assets', page.assets);
  app.get('/v1/dashboard/session', chain(viewers.viewerOnly, sessionRoute(viewers)));
  app.post('/v1/dashboard/login', chain(jsonBody, loginRoute(viewers)));
  app.post('/v1/dashboard/logout', logoutRoute());
  app.get('/v1/events', chain(viewers.viewerOnly, streams.route()));
  app.get('/v1/fleet', chain(viewers.viewerOnly, fleetRoute(fleet)));
  app.get('/v1/bags', chain(viewers.viewerOrUploader, listBagsRoute(context.store)));
  app.get('/v1/bags/:uploader/*bag', chain(viewers.viewerOrUploader, bagRoute(context.store)));
  app.get('/metrics', chain(viewers.viewerOnly, metricsRoute(metrics)));

  app.use((req, _res, next) => {
    const shown = req.path.length > 100 ? `${req.path.slice(0, 100)}…` : req.path;
    next(new UploadError('ROUTE_NOT_FOUND', `No route ${req.method} ${shown}`));
  });
  app.use(errorHandler(options.log, options.idleTimeoutMs));
  return app;
}
