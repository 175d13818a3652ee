import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP(S) reverse proxy for tests that need to see or change single requests: it logs
 * every request (method, path, status) and can answer one itself instead of forwarding it
 * (a 429 with Retry-After, a 503, ...). Bodies are streamed both ways; the request body of an
 * answered request is read and discarded.
 *
 * ```ts
 * const front = await HttpFaultFront.start({ target: server.url });
 * front.inject((req, n) =>
 *   req.method === 'PUT' && n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : undefined,
 * );
 * ```
 * With `tls` it serves HTTPS (e.g. `requestCert: true` to demand client certificates) and still
 * forwards to the target over its own protocol.
 */
export interface InjectedAnswer {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded when not a string. */
  body?: unknown;
}

export interface FrontRequestLog {
  method: string;
  path: string;
  status: number;
  /** True when the front answered itself. */
  injected: boolean;
  /** performance.now() when the answer was sent. */
  at: number;
}

/** Decides per request; `count` is how many requests with the same method and path came before (0 first). */
export type Injector = (request: http.IncomingMessage, count: number) => InjectedAnswer | undefined;

export class HttpFaultFront {
  readonly log: FrontRequestLog[] = [];
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #agent: http.Agent;
  #injector: Injector | undefined;
  readonly #counts = new Map<string, number>();
  readonly #protocol: 'http' | 'https';

  private constructor(target: string, tls: https.ServerOptions | undefined) {
    this.#target = new URL(target);
    this.#agent =
      this.#target.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, rejectUnauthorized: false })
        : new http.Agent({ keepAlive: true });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.#handle(req, res);
    this.#server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    this.#protocol = tls ? 'https' : 'http';
  }

  static async start(options: { target: string; tls?: https.ServerOptions }): Promise<HttpFaultFront> {
    const front = new HttpFaultFront(options.target, options.tls);
    await new Promise<void>((resolve, reject) => {
      front.#server.once('error', reject);
      front.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return front;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.#protocol}://127.0.0.1:${this.port}`;
  }

  inject(injector: Injector | undefined): void {
    this.#injector = injector;
  }

  /** Log entries matching a method and a path pattern. */
  requests(method: string, path: RegExp): FrontRequestLog[] {
    return this.log.filter((entry) => entry.method === method && path.test(entry.path));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const key = `${method} ${path}`;
    const count = this.#counts.get(key) ?? 0;
    this.#counts.set(key, count + 1);
    const answer = this.#injector?.(req, count);
    if (answer) {
      req.resume();
      req.on('end', () => {
        const body =
          answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...answer.headers,
        });
        res.end(body);
        this.log.push({ method, path, status: answer.status, injected: true, at: performance.now() });
      });
      return;
    }
    const client = this.#target.protocol === 'https:' ? https : http;
    const upstream = client.request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method,
        path,
        headers: { ...req.headers, host: this.#target.host },
        agent: this.#agent,
      },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
        response.on('end', () =>
          this.log.push({ method, path, status: response.statusCode ?? 502, injected: false, at: performance.now() }),
        );
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}
