import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UploadError } from '../errors/upload-error.js';

/** Where a program serves its Prometheus metrics (`--metrics-listen HOST:PORT`). */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * HOST:PORT or [IPv6]:PORT of a `--metrics-listen` option; CONFIG_INVALID naming the option
 * (`label`, e.g. "metricsListen (--metrics-listen, UPLOAD_SERVER_METRICS_LISTEN)") otherwise.
 */
export function parseListen(value: string, label: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new UploadError(
      'CONFIG_INVALID',
      `Invalid ${label}: ${JSON.stringify(value)}: expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464`,
    );
  }
  return { host, port };
}

export interface MetricsEndpoint {
  /** `http://HOST:PORT/metrics`. */
  readonly url: string;
  /** Stops listening and drops open connections (a scrape holds nothing worth waiting for). */
  close(): void;
}

/**
 * A plain HTTP listener that answers only `GET /metrics` with the Prometheus text `collect`
 * returns (404 for anything else, 500 when collecting fails). It carries no token: bind it to
 * an address only the scraper can reach.
 */
export async function serveMetrics(
  address: ListenAddress,
  collect: () => Promise<{ contentType: string; text: string }>,
  onError: (error: unknown) => void,
): Promise<MetricsEndpoint> {
  const server = http.createServer((req, res) => {
    const [route] = (req.url ?? '').split('?');
    if (req.method !== 'GET' || route !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Only GET /metrics is served here\n');
      return;
    }
    collect().then(
      ({ contentType, text }) => res.writeHead(200, { 'Content-Type': contentType }).end(text),
      (error: unknown) => {
        onError(error);
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why = error.code === 'EADDRINUSE' ? 'the port is in use' : error.message;
      reject(
        new UploadError('CONFIG_INVALID', `Cannot listen on ${address.host}:${address.port}: ${why}`, { cause: error }),
      );
    };
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
