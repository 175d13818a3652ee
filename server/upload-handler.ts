import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { UploadError } from '../common/errors/upload-error.js';
import type { ConfigOf } from '../common/config/index.js';
import { GzipAtRest } from './compression/gzip-at-rest.js';
import { serverOptions, type ServerConfig, type serverOptionSpecs } from './config/server-options.js';
import { UploadEventBus, type UploadEvents } from './events/upload-events.js';
import { openBackends } from './backends.js';
import { createApp } from './http-app.js';
import { httpStatusOf } from './http/error-status.js';
import { AuthFailureGuard } from './http/auth-failures.js';
import type { ClientCertificates } from './http/client-certificates.js';
import type { FileModeOptions } from './http/file-mode.js';
import { loadTokens } from './http/load-tokens.js';
import { createRouteLimits } from './http/rate-limits.js';
import { errorBody } from './http/send-error.js';
import type { TokenTable } from './http/token-table.js';
import { parseTrustProxy } from './http/trust-proxy.js';
import { ExpirySweeper } from './jobs/expiry-sweeper.js';
import { reconcileIndex } from './jobs/reconcile-index.js';
import { recoverAtStartup } from './jobs/startup-recovery.js';
import { createLogger, type Logger } from './logging/logger.js';
import { isDiskFull } from './storage/disk-full.js';
import type { SessionStore } from './sessions/session-store.js';
import type { UploadStorage } from './storage/upload-storage.js';
import { FreeSpaceGauge } from './uploads/free-space-gauge.js';
import { InFlightBudget } from './uploads/in-flight-budget.js';
import type { UploadContext } from './uploads/upload-context.js';
import { BagTracker } from './fleet/bag-tracker.js';
import { FleetView } from './fleet/fleet-view.js';
import { ViewerAccess } from './http/viewer-access.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { EventStreamHub } from './routes/dashboard/event-stream.js';
import { WebhookDeliverer } from './webhooks/webhook-deliverer.js';

/**
 * Options of createUploadHandler and createUploadServer: any server option (camelCase), plus what
 * only a library caller can pass.
 */
export type UploadHandlerOptions = Partial<ConfigOf<typeof serverOptionSpecs>> & {
  /** A storage other than the local disk under uploadDir (tests inject faults with a decorator). */
  storage?: UploadStorage;
  /** Wraps the embedded session store (SQLite under uploadDir) once opened: tests inject faults with a decorator. */
  decorateStore?: (store: SessionStore) => SessionStore;
  /** A pino logger; by default one is made at logLevel, writing to stdout. */
  logger?: Logger;
};

/** Options of createUploadHandler only. */
export interface MountOptions {
  /**
   * Where the API lives in the host's URL space when the handler is called with full URLs (a
   * plain node:http server): `/uploads` serves `/uploads/v1/sessions`, `/uploads/health`...
   * Requests outside it go to the `next` callback, or get the JSON 404. Leave it unset under
   * Express's `app.use('/uploads', handler.handle)`, which strips the prefix itself.
   */
  basePath?: string;
}

/** A (req, res[, next]) function, for node:http's request event or as Express middleware. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

export interface UploadHandler {
  /**
   * Serves one request of either API. Mount it before any body parser of the host (chunk bodies
   * are streamed from the request). Every request under the handler's path is answered by it,
   * unknown routes with the JSON 404.
   */
  readonly handle: RequestListener;
  /** The upload events (session created, chunk stored, file completed, session failed, cancelled, expired). */
  readonly events: UploadEvents;
  /** The resolved configuration. */
  readonly config: ServerConfig;
  /** Where the storage is, for logs. */
  readonly storageRoot: string;
  /** Deletes expired sessions now (also runs every cleanupInterval). */
  sweepExpired(): Promise<void>;
  /**
   * Resolves once the stored files are announced (bag records updated, webhook deliveries
   * queued): what a test or a script waits for before it reads the bag view.
   */
  settled(): Promise<void>;
  /**
   * Starts draining: GET /ready answers 503 and every answer closes its connection, so a load
   * balancer stops sending requests here while those in flight finish. `close` drains too.
   */
  drain(): void;
  /**
   * Stops the background work (expiry, gzip copies, hashing) and closes the session store. Let
   * the requests in flight finish first: closing the host's server does that.
   */
  close(): Promise<void>;
}

/**
 * The receiving server's request handler, to mount in an existing node:http server or Express
 * app (as tus-node-server's `server.handle(req, res)`); `createUploadServer` is this handler on
 * a server of its own. It opens the storage and the session store and recovers from a crash
 * before it resolves. A mounted handler cannot know whether its host listens only on loopback,
 * so it needs tokens (a tokens file or `tokens`) or an explicit `allowAnonymous`.
 */
export async function createUploadHandler(options: UploadHandlerOptions & MountOptions = {}): Promise<UploadHandler> {
  const { storage, logger, basePath, decorateStore, ...values } = options;
  const config = serverOptions.resolve(serverOptions.parse(values, 'options'));
  const log = logger ?? createLogger(config.logLevel, [serverOptions.specs]);
  if (config.clientCa) {
    throw new UploadError(
      'CONFIG_INVALID',
      "clientCa needs the server's own TLS (createUploadServer or ros2-upload-server): a handler mounted in " +
        "another server cannot ask that server's clients for certificates",
    );
  }
  const tokens = loadTokens(config.tokensFile, config.tokens, fileModeOptions(config, log));
  const viewers = loadViewerTokens(config, tokens);
  if (tokens.size === 0 && !config.allowAnonymous) {
    throw new UploadError(
      'CONFIG_INVALID',
      'An upload handler mounted in another server cannot tell whether that server is reachable ' +
        'from other machines: set tokens (tokensFile or tokens), or allowAnonymous to accept anyone',
    );
  }
  return assembleUploadHandler({
    config,
    log,
    tokens,
    viewers,
    certificates: undefined,
    anonymousAllowed: tokens.size === 0 || config.allowAnonymous,
    openOnLoopback: false,
    storage,
    decorateStore,
    basePath,
    ownServer: false,
  });
}

/**
 * The viewer tokens (viewerTokensFile, viewerTokens); a token that is also an uploader's is a
 * configuration error, since it could not tell which it is.
 */
export function loadViewerTokens(config: ServerConfig, uploaders: TokenTable): TokenTable {
  const viewers = loadTokens(config.viewerTokensFile, config.viewerTokens);
  for (const viewer of viewers.names()) {
    for (const digest of viewers.digestsOf(viewer)) {
      for (const uploader of uploaders.names()) {
        if (uploaders.digestsOf(uploader).some((other) => other.equals(digest))) {
          throw new UploadError(
            'CONFIG_INVALID',
            `The same token is given to the viewer ${viewer} and the uploader ${uploader}: viewer tokens must differ`,
          );
        }
      }
    }
  }
  return viewers;
}

/** The handler with what its own server needs besides (createUploadServer). */
export interface AssembledHandler extends UploadHandler {
  /** Ends the dashboard's event streams, so closing the server need not wait for them. */
  endStreams(): void;
  /** The Prometheus text, for --metrics-listen. */
  metricsText(): Promise<{ contentType: string; text: string }>;
}

export interface HandlerParts {
  config: ServerConfig;
  log: Logger;
  tokens: TokenTable;
  /** Viewer tokens (the dashboard, /v1/events, /v1/bags, /metrics). */
  viewers: TokenTable;
  certificates: ClientCertificates | undefined;
  anonymousAllowed: boolean;
  /** No tokens, listening on loopback only (createUploadServer knows; a mounted handler never claims it). */
  openOnLoopback: boolean;
  storage: UploadStorage | undefined;
  decorateStore: ((store: SessionStore) => SessionStore) | undefined;
  basePath: string | undefined;
  /**
   * True when the handler serves a server of its own (createUploadServer): it then manages the
   * sockets' idle timeout.
   */
  ownServer: boolean;
}

/**
 * The composition root: the one place that builds the stores, the upload context, the HTTP
 * app and the background jobs, and wires them together.
 */
export async function assembleUploadHandler(parts: HandlerParts): Promise<AssembledHandler> {
  const { config, log } = parts;
  const backends = await openBackends(config, parts.storage, log, parts.decorateStore);
  const { storage, store } = backends;
  try {
    await recoverAtStartup(store, storage, log, backends.shared);
    // Replicas: one reconciles the shared index (the others start meanwhile; it is the same bucket).
    await backends.runAlone('reconcile', () => reconcileIndex(store, storage, log));
  } catch (error) {
    await backends.fleetBus.close();
    await store.close();
    if (!parts.storage) await storage.close?.();
    if (isDiskFull(error))
      throw new UploadError('STATE_DIR', `The storage ${storage.root} is full: ${(error as Error).message}`, {
        cause: error,
      });
    throw error;
  }
  const events = new UploadEventBus((error, name) =>
    log.error({ event: 'event_listener_failed', name, err: error }, `A listener of ${name} failed`),
  );
  const gzip = new GzipAtRest(storage, store, log, config.compressionLevel);
  const context: UploadContext = {
    config,
    store,
    storage,
    runtimes: backends.runtimes,
    gzip,
    freeSpace: new FreeSpaceGauge(storage),
    inFlight: new InFlightBudget(config.maxBytesInFlight),
    pathLocks: backends.pathLocks,
    events,
    log,
  };
  let draining = false;
  const checks: Record<string, () => Promise<void>> = {};
  const { checkReady: storageReady } = storage;
  const { checkReady: storeReady } = store;
  if (storageReady) checks.storage = () => storageReady.call(storage);
  if (storeReady) checks.database = () => storeReady.call(store);
  const fleet = new FleetView({
    store,
    storage,
    events,
    log,
    knownUploaders: parts.tokens.names(),
    bus: backends.fleetBus,
    completingIds: () =>
      new Set(
        context.runtimes
          .all()
          .filter((runtime) => runtime.record.state === 'completing')
          .map((runtime) => runtime.id),
      ),
  });
  const streams = new EventStreamHub(fleet, log);
  const metrics = new ServerMetrics({ events, fleet, store, streams: () => streams.clients });
  const webhooks = new WebhookDeliverer({
    store,
    log,
    urls: {
      ...(config.onFileComplete !== undefined ? { file: config.onFileComplete } : {}),
      ...(config.onBagComplete !== undefined ? { bag: config.onBagComplete } : {}),
    },
    secret: config.webhookSecret,
    timeoutMs: config.webhookTimeout * 1000,
    retentionMs: config.webhookRetention * 1000,
    onAttempt: (hook, outcome) => metrics.webhookAttempt(hook, outcome),
  });
  const bags = new BagTracker({
    store,
    storage,
    events,
    log,
    hooks: { file: config.onFileComplete !== undefined, bag: config.onBagComplete !== undefined },
    onDeliveries: () => webhooks.kick(),
  });
  const limits = createRouteLimits(config, log, backends.rateLimitStores);
  const failures = new AuthFailureGuard(limits.authFailures, log);
  const viewers = new ViewerAccess({
    viewers: parts.viewers,
    uploaders: parts.tokens,
    open:
      parts.tokens.size === 0 && parts.viewers.size === 0 && parts.certificates === undefined && parts.anonymousAllowed,
    loginSeconds: config.viewerLoginDuration,
    failures,
  });
  const app = createApp({
    context,
    credentials: {
      tokens: parts.tokens,
      certificates: parts.certificates,
      anonymousAllowed: parts.anonymousAllowed,
      failures,
    },
    openOnLoopback: parts.openOnLoopback,
    limits,
    log,
    trustProxy: parseTrustProxy(config.trustProxy),
    idleTimeoutMs: parts.ownServer ? config.idleTimeout * 1000 : undefined,
    fleet,
    metrics,
    viewers,
    streams,
    readiness: { draining: () => draining, checks },
  });
  try {
    await fleet.start();
    await webhooks.start();
  } catch (error) {
    await fleet.close().catch(() => undefined);
    await backends.fleetBus.close();
    await store.close();
    if (!parts.storage) await storage.close?.();
    throw error;
  }
  bags.kick();
  const sweeper = new ExpirySweeper(context, {
    runAlone: backends.runAlone,
    housekeeping: backends.housekeeping,
    sweepOrphans: backends.shared,
  });
  sweeper.start();

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    draining = true;
    streams.closeAll();
    await sweeper.stop();
    await bags.close();
    await webhooks.close();
    await fleet
      .close()
      .catch((error: unknown) =>
        log.warn({ event: 'stats_save_failed', err: error }, 'Could not save the uploader statistics'),
      );
    await backends.fleetBus.close();
    await Promise.race([gzip.close(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    await Promise.allSettled(context.runtimes.all().map((runtime) => runtime.pump));
    await store.close();
    if (!parts.storage) await storage.close?.();
  };
  return {
    handle: mountAt(app, parts.basePath),
    events,
    config,
    storageRoot: storage.root,
    sweepExpired: () => sweeper.sweep(),
    endStreams: () => streams.closeAll(),
    metricsText: async () => ({ contentType: metrics.contentType, text: await metrics.text() }),
    settled: () => bags.idle(),
    drain: () => {
      draining = true;
    },
    close: () => (closing ??= close()),
  };
}

/**
 * The request listener for `app` under `basePath`. A request the app does not take (outside
 * basePath) goes to `next` with the host's request and response as they were, or gets the
 * JSON 404.
 */
function mountAt(app: express.Express, basePath: string | undefined): RequestListener {
  let entry: express.Express = app;
  if (basePath !== undefined && basePath !== '' && basePath !== '/') {
    entry = express();
    entry.disable('x-powered-by');
    entry.use(basePath, app);
  }
  return (req, res, next) => {
    // Express gives req and res its own prototypes while it handles them: put the host's back
    // before the host sees them again.
    const requestPrototype = Object.getPrototypeOf(req) as object;
    const responsePrototype = Object.getPrototypeOf(res) as object;
    (entry as unknown as RequestListener)(req, res, (error?: unknown) => {
      Object.setPrototypeOf(req, requestPrototype);
      Object.setPrototypeOf(res, responsePrototype);
      if (next) next(error);
      else notFound(req, res);
    });
  };
}

function notFound(req: IncomingMessage, res: ServerResponse): void {
  const [route = ''] = (req.url ?? '').split('?');
  const error = new UploadError('ROUTE_NOT_FOUND', `No route ${req.method} ${route.slice(0, 100)}`);
  res.writeHead(httpStatusOf(error.code), { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(errorBody(error)));
}

/** How the credential files' permissions are checked: warnings go to the log; strictPermissions refuses. */
export function fileModeOptions(config: ServerConfig, log: Logger): FileModeOptions {
  return {
    strictPermissions: config.strictPermissions,
    warn: (message, fields) => log.warn(fields, message),
  };
}
