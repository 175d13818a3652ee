import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { UploadError } from '../common/errors/upload-error.js';
import { type MetricsEndpoint, parseListen, serveMetrics } from '../common/program/metrics-endpoint.js';
import { serverOptions } from './config/server-options.js';
import { handleClientError } from './http/client-error.js';
import { type ClientCertificates, loadClientCertificates } from './http/client-certificates.js';
import { loadTokens } from './http/load-tokens.js';
import { createLogger, type Logger } from './logging/logger.js';
import { loadTls } from './tls/load-tls.js';
import {
  assembleUploadHandler,
  fileModeOptions,
  loadViewerTokens,
  type UploadHandler,
  type UploadHandlerOptions,
} from './upload-handler.js';

/** Options of createUploadServer: any server option (camelCase), plus what only a library caller can pass. */
export type UploadServerOptions = UploadHandlerOptions;

export interface UploadServer
  extends Pick<UploadHandler, 'config' | 'storageRoot' | 'events' | 'sweepExpired' | 'settled'> {
  /** `http://127.0.0.1:PORT` or `https://…`; the host is bracketed for IPv6. */
  readonly url: string;
  readonly address: AddressInfo;
  readonly port: number;
  /** `http://HOST:PORT/metrics` of --metrics-listen, when given. */
  readonly metricsUrl: string | undefined;
  /**
   * Stops accepting connections, lets requests in flight finish for up to shutdownTimeout, then
   * closes the remaining connections, the session store and the background work.
   */
  close(): Promise<void>;
}

/**
 * Starts the receiving server: validates the options (a bad value is an UploadError naming the
 * option), refuses to listen on a non-loopback address without tokens unless allowAnonymous,
 * loads TLS (never falling back to HTTP), builds the upload handler (storage, session store,
 * crash recovery; see upload-handler.ts), and listens. `port: 0` picks a free port; `url`
 * reports it.
 */
export async function createUploadServer(options: UploadServerOptions = {}): Promise<UploadServer> {
  const { storage, logger, decorateStore, ...values } = options;
  const config = serverOptions.resolve(serverOptions.parse(values, 'options'));
  const log = logger ?? createLogger(config.logLevel, [serverOptions.specs]);

  if (config.requestTimeout > 0 && config.headersTimeout > config.requestTimeout) {
    throw new UploadError(
      'CONFIG_INVALID',
      `headersTimeout (${config.headersTimeout} s) must not be longer than requestTimeout (${config.requestTimeout} s)`,
    );
  }
  const tokens = loadTokens(config.tokensFile, config.tokens, fileModeOptions(config, log));
  const viewers = loadViewerTokens(config, tokens);
  const certificates = loadClientCertificates(config, fileModeOptions(config, log));
  const tls = loadTls(config.sslCert, config.sslKey, config.clientCa);
  const metricsAddress =
    config.metricsListen === undefined
      ? undefined
      : parseListen(config.metricsListen, 'metricsListen (--metrics-listen, UPLOAD_SERVER_METRICS_LISTEN)');
  const loopback = isLoopback(config.host);
  if (!loopback && tokens.size === 0 && !certificates && !config.allowAnonymous) {
    throw new UploadError(
      'CONFIG_INVALID',
      `Refusing to listen on ${config.host} without tokens: set a tokens file ` +
        `(--tokens-file) or UPLOAD_SERVER_TOKENS, or pass --allow-anonymous to accept anyone`,
    );
  }
  const anonymousAllowed = (tokens.size === 0 && !certificates) || config.allowAnonymous;

  const handler = await assembleUploadHandler({
    config,
    log,
    tokens,
    viewers,
    certificates,
    anonymousAllowed,
    openOnLoopback: loopback && tokens.size === 0 && !certificates,
    storage,
    decorateStore,
    basePath: undefined,
    ownServer: true,
  });
  let server: http.Server | undefined;
  let metricsServer: MetricsEndpoint | undefined;
  try {
    const serverOptions: http.ServerOptions = {
      headersTimeout: config.headersTimeout * 1000,
      requestTimeout: config.requestTimeout * 1000,
      keepAliveTimeout: config.keepAliveTimeout * 1000,
      // A request without Host gets our JSON 400 from the route layer instead of Node's bare one.
      requireHostHeader: false,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, (config.headersTimeout * 1000) / 4)),
    };
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => handler.handle(req, res);
    // With clientCa, every client is asked for a certificate, and the handshake completes whatever
    // it presents: the routes decide (a client without one may use a token; a bad one gets a 401
    // that names the problem, where a refused handshake would look like a network failure).
    const clientCertificates: https.ServerOptions = tls?.clientCa
      ? { requestCert: true, rejectUnauthorized: false, ca: tls.clientCa }
      : {};
    server = tls
      ? https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key, ...clientCertificates }, listener)
      : http.createServer(serverOptions, listener);
    server.setTimeout(config.idleTimeout * 1000);
    if (config.maxConnections > 0) server.maxConnections = config.maxConnections;
    server.on('drop', connectionDropLogger(log, config.maxConnections));
    server.on('clientError', handleClientError(log));
    const sockets = new Set<Socket>();
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });

    await listen(server, config.port, config.host);
    const address = server.address() as AddressInfo;
    const url = `${tls ? 'https' : 'http'}://${hostPort(address)}`;
    if (metricsAddress) {
      metricsServer = await serveMetrics(
        metricsAddress,
        () => handler.metricsText(),
        (error) => log.error({ event: 'metrics_failed', err: error }, 'Could not collect the metrics'),
      );
    }
    const metricsUrl = metricsServer?.url;
    log.info(
      {
        event: 'listening',
        url,
        uploadDir: handler.storageRoot,
        tls: Boolean(tls),
        auth: describeAuth(tokens.size, certificates),
        anonymousAllowed,
        rateLimit: config.rateLimit,
        viewers: viewers.size,
        ...(metricsUrl ? { metricsUrl } : {}),
        storage: config.storageBackend,
        database: config.databaseUrl ? 'postgresql' : 'sqlite',
      },
      `Upload server listening on ${url}; dashboard at ${url}/dashboard/`,
    );

    const listening = server;
    const listeningMetrics = metricsServer;
    let closing: Promise<void> | undefined;
    const close = async (): Promise<void> => {
      // The dashboard's streams never end by themselves: end them first so they do not hold the shutdown.
      handler.endStreams();
      listeningMetrics?.close();
      handler.drain();
      await stopServing(listening, sockets, config.shutdownTimeout);
      await handler.close();
      log.info({ event: 'closed' }, 'Upload server closed');
    };
    return {
      url,
      address,
      port: address.port,
      metricsUrl,
      config,
      storageRoot: handler.storageRoot,
      events: handler.events,
      sweepExpired: () => handler.sweepExpired(),
      settled: () => handler.settled(),
      close: () => (closing ??= close()),
    };
  } catch (error) {
    server?.close();
    metricsServer?.close();
    await handler.close();
    throw error;
  }
}

function hostPort(address: AddressInfo): string {
  return `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/**
 * Stops accepting connections and closes them as their requests finish, all of them after
 * `shutdownTimeout` seconds.
 */
async function stopServing(server: http.Server, sockets: Set<Socket>, shutdownTimeout: number): Promise<void> {
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  // Connections become idle as their requests finish: close them as they do.
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, shutdownTimeout * 1000).unref());
  await Promise.race([stopped, deadline]);
  clearInterval(idle);
  server.closeAllConnections();
  for (const socket of sockets) socket.destroy();
  await stopped;
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new UploadError(
          'CONFIG_INVALID',
          `Cannot listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`,
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Logs connections refused at maxConnections (Node closes them as they arrive): one warning when
 * the limit is first hit, then at most one a minute with the count, so a flood cannot flood the log.
 */
function connectionDropLogger(log: Logger, limit: number): () => void {
  let dropped = 0;
  let lastLogged = 0;
  return () => {
    dropped += 1;
    const now = Date.now();
    if (now - lastLogged < 60_000) return;
    lastLogged = now;
    log.warn(
      { event: 'connections_refused', limit, refused: dropped },
      `At the connection limit (maxConnections ${limit}): ${dropped} connections refused so far`,
    );
  };
}

/**
 * 127.0.0.0/8, ::1 and localhost count as loopback: the legacy deployment guide's curl examples
 * need an open server there.
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** `3 tokens, client certificates (2 mapped, CN rule)`, or `open`, for the listening line. */
function describeAuth(tokens: number, certificates: ClientCertificates | undefined): string {
  const parts = tokens > 0 ? [`${tokens} tokens`] : [];
  if (certificates) parts.push(`client certificates (${certificates.mapped} mapped)`);
  return parts.length > 0 ? parts.join(', ') : 'open';
}
