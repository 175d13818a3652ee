import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request that went through the proxy (times are performance.now() ms in the test process). */
export interface ProxiedRequest {
  method: string;
  url: string;
  startedAt: number;
  finishedAt: number | undefined;
  status: number | undefined;
  /** Request body bytes forwarded (chunk PUTs). */
  bytesIn: number;
  /** For POST /v1/sessions: the `path` asked for and the session id or state answered. */
  path: string | undefined;
  sessionId: string | undefined;
  answerState: string | undefined;
}

/**
 * A real HTTP reverse proxy in front of the server that records every request of the native
 * protocol: when each session was created (for which path), how many chunk bytes crossed, and
 * which completions succeeded. The tests use it to check "only after it was closed" (session
 * creation after the bag writer's close) and "exactly once", without reaching into the server.
 */
export class RecordingProxy {
  readonly requests: ProxiedRequest[] = [];
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #sessionPaths = new Map<string, string>();
  #url = '';

  private constructor(target: string) {
    this.#target = new URL(target);
    this.#server = http.createServer((req, res) => this.#forward(req, res));
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(target: string): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.#url = `http://127.0.0.1:${(proxy.#server.address() as AddressInfo).port}`;
    return proxy;
  }

  get url(): string {
    return this.#url;
  }

  /** Session creations (POST /v1/sessions) answered 200/201, in order. */
  sessionsFor(remotePath?: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.url === '/v1/sessions' && r.status !== undefined && r.status < 300 && (remotePath === undefined || r.path === remotePath));
  }

  /** Successful completions (POST /v1/sessions/:id/complete answered 200), with the session's path. */
  completionsFor(remotePath?: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/complete') && r.status === 200 && (remotePath === undefined || r.path === remotePath));
  }

  /** Chunk bytes sent for a path (PUT /v1/sessions/:id/chunks/:n answered 200). */
  chunkBytesFor(remotePath?: string): number {
    return this.requests
      .filter((r) => r.method === 'PUT' && r.status === 200 && (remotePath === undefined || r.path === remotePath))
      .reduce((sum, r) => sum + r.bytesIn, 0);
  }

  /** Chunk PUTs that have started for a path (even unfinished ones). */
  chunkRequestsFor(remotePath: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'PUT' && r.path === remotePath);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      startedAt: performance.now(),
      finishedAt: undefined,
      status: undefined,
      bytesIn: 0,
      path: undefined,
      sessionId: undefined,
      answerState: undefined,
    };
    this.requests.push(record);
    const sessionMatch = /^\/v1\/sessions\/([^/]+)/.exec(record.url);
    if (sessionMatch) {
      record.sessionId = decodeURIComponent(sessionMatch[1]!);
      record.path = this.#sessionPaths.get(record.sessionId);
    }
    const isCreate = record.method === 'POST' && record.url === '/v1/sessions';
    const requestChunks: Buffer[] = [];
    const upstream = http.request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        record.status = answer.statusCode;
        if (!res.destroyed) res.writeHead(answer.statusCode ?? 502, answer.headers);
        const answerChunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => {
          if (isCreate) answerChunks.push(chunk);
          if (!res.destroyed) res.write(chunk);
        });
        answer.on('end', () => {
          if (isCreate) {
            try {
              const body = JSON.parse(Buffer.concat(answerChunks).toString('utf8')) as { id?: string; state?: string; path?: string };
              record.answerState = body.state;
              if (body.id) {
                record.sessionId = body.id;
                if (record.path) this.#sessionPaths.set(body.id, record.path);
              }
            } catch {
              // an error answer without JSON
            }
          }
          record.finishedAt = performance.now();
          if (!res.destroyed) res.end();
        });
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.on('data', (chunk: Buffer) => {
      record.bytesIn += chunk.length;
      if (isCreate) requestChunks.push(chunk);
      upstream.write(chunk);
    });
    req.on('end', () => {
      if (isCreate) {
        try {
          record.path = (JSON.parse(Buffer.concat(requestChunks).toString('utf8')) as { path?: string }).path;
        } catch {
          // not JSON: the server answers 400
        }
      }
      upstream.end();
    });
    let bodyForwarded = false;
    req.on('end', () => (bodyForwarded = true));
    req.on('error', () => upstream.destroy());
    // A client that goes away mid-body aborts the request; one that goes away after its whole
    // body went out (killed while waiting for the answer) does not: the server still acts on the
    // request, and its answer is recorded (what the server did is what the tests count).
    res.on('close', () => {
      if (!res.writableEnded && !bodyForwarded) upstream.destroy();
    });
  }
}
