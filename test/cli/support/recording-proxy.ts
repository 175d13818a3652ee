import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request that went through the proxy (times are performance.now() ms in the test process). */
export interface ProxiedRequest {
  method: string;
  url: string;
  startedAt: number;
  finishedAt: number | undefined;
  status: number | undefined;
  /** Request body bytes forwarded (chunk and whole-file PUTs). */
  bytesIn: number;
  /**
   * For POST /v1/sessions: the `path` asked for and the session id or state answered; for
   * requests on a session, that session's path; for PUT /v1/files/<path>, the path.
   */
  path: string | undefined;
  sessionId: string | undefined;
  answerState: string | undefined;
  /** The `metadata` a create or a whole-file PUT sent with the file (JSON body, or X-Upload-Metadata). */
  metadata: Record<string, unknown> | undefined;
}

/**
 * A real HTTP reverse proxy in front of the server that records every request of the native
 * protocol: when each file's upload began (a session created, or a whole small file PUT, for
 * which path), how many data bytes crossed, and which uploads completed. The tests use it to
 * check "only after it was closed" (upload begun after the bag writer's close) and "exactly
 * once", without reaching into the server.
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

  /**
   * Uploads begun, in order: session creations (POST /v1/sessions) and whole small files
   * (PUT /v1/files/<path>) answered 200/201.
   */
  uploadsFor(remotePath?: string): ProxiedRequest[] {
    return this.requests.filter(
      (r) =>
        (isCreate(r) || isWholeFile(r)) &&
        r.status !== undefined &&
        r.status < 300 &&
        (remotePath === undefined || r.path === remotePath),
    );
  }

  /**
   * Files that became stored, with their path: completions (POST /v1/sessions/:id/complete
   * answered 200) and whole-file PUTs answered 201 (a 200 there means "already stored").
   */
  completionsFor(remotePath?: string): ProxiedRequest[] {
    return this.requests.filter(
      (r) =>
        ((r.method === 'POST' && r.url.endsWith('/complete') && r.status === 200) ||
          (isWholeFile(r) && r.status === 201)) &&
        (remotePath === undefined || r.path === remotePath),
    );
  }

  /** File bytes that reached the server for a path: chunk PUTs answered 200, whole-file PUTs answered 200 or 201. */
  chunkBytesFor(remotePath?: string): number {
    return this.requests
      .filter(
        (r) =>
          r.method === 'PUT' &&
          (r.status === 200 || (isWholeFile(r) && r.status === 201)) &&
          (remotePath === undefined || r.path === remotePath),
      )
      .reduce((sum, r) => sum + r.bytesIn, 0);
  }

  /**
   * True when every request seen for a path has its answer recorded. The server stores a file
   * before its answer reaches the proxy: a test that saw the stored file must wait for this
   * before it reads what the proxy recorded about it.
   */
  settled(remotePath: string): boolean {
    return this.requests.every((r) => r.path !== remotePath || r.finishedAt !== undefined);
  }

  /** Data PUTs (chunks and whole files) that have started for a path (even unfinished ones). */
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
      metadata: undefined,
    };
    this.requests.push(record);
    const sessionMatch = /^\/v1\/sessions\/([^/]+)/.exec(record.url);
    if (sessionMatch) {
      record.sessionId = decodeURIComponent(sessionMatch[1]!);
      record.path = this.#sessionPaths.get(record.sessionId);
    }
    if (isWholeFile(record)) {
      record.path = record.url.slice('/v1/files/'.length).split('/').map(decodeURIComponent).join('/');
      const header = req.headers['x-upload-metadata'];
      if (typeof header === 'string')
        record.metadata = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
    }
    const create = isCreate(record);
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
          if (create) answerChunks.push(chunk);
          if (!res.destroyed) res.write(chunk);
        });
        answer.on('end', () => {
          if (create) {
            try {
              const body = JSON.parse(Buffer.concat(answerChunks).toString('utf8')) as {
                id?: string;
                state?: string;
                path?: string;
              };
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
      if (create) requestChunks.push(chunk);
      upstream.write(chunk);
    });
    req.on('end', () => {
      if (create) {
        try {
          const body = JSON.parse(Buffer.concat(requestChunks).toString('utf8')) as {
            path?: string;
            metadata?: Record<string, unknown>;
          };
          record.path = body.path;
          record.metadata = body.metadata;
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

function isCreate(r: ProxiedRequest): boolean {
  return r.method === 'POST' && r.url === '/v1/sessions';
}

function isWholeFile(r: ProxiedRequest): boolean {
  return r.method === 'PUT' && r.url.startsWith('/v1/files/');
}
