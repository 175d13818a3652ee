import net from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A TCP proxy on 127.0.0.1 that counts what goes through it, for the benchmarks that measure the
 * wire: put it between the agent and the server (`--server <proxy.url>`).
 *
 * It counts, client → server ("up"):
 * - **wire bytes**: the TCP payload, i.e. HTTP request lines, headers and bodies (not the IP and
 *   TCP headers, which a user-space proxy cannot see);
 * - **chunk payload bytes**: the bodies of chunk PUTs (`PUT /v1/sessions/<id>/chunks/<n>`), the
 *   bytes the agent's bandwidth limit applies to.
 *
 * To tell them apart it follows the HTTP/1.1 request framing of each connection (request head,
 * then `Content-Length` bytes of body; the agent always sends a Content-Length). It records
 * every request (method, path, when its head started, when its last body byte went through,
 * when the first byte of its answer came back, and the status), and, when `recordEvents` is on,
 * every piece of upstream data with its arrival time.
 */
export interface ProxyRequest {
  connection: number;
  method: string;
  path: string;
  contentLength: number;
  bodyBytes: number;
  startedAt: number;
  /** When the last body byte passed (undefined while the body is still coming). */
  sentAt: number | undefined;
  /** When the first byte of the answer passed. */
  answeredAt: number | undefined;
  status: number | undefined;
  isChunk: boolean;
  /** Chunk index of a chunk PUT. */
  chunkIndex: number | undefined;
  sessionId: string | undefined;
}

/** One piece of upstream data as it arrived. */
export interface ByteEvent {
  t: number;
  wire: number;
  /** Of which chunk body bytes. */
  payload: number;
}

const CHUNK_PATH = /^\/v1\/sessions\/([^/]+)\/chunks\/(\d+)$/;
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

interface Upstream {
  id: number;
  head: Buffer;
  body: { request: ProxyRequest; remaining: number } | undefined;
  /** Framing lost (e.g. chunked transfer coding): only wire bytes are counted. */
  blind: boolean;
  requests: ProxyRequest[];
}

export class CountingProxy {
  wireUp = 0;
  payloadUp = 0;
  wireDown = 0;
  connections = 0;
  readonly requests: ProxyRequest[] = [];
  readonly events: ByteEvent[] = [];
  /** Problems with the framing (reported by the benchmarks; none expected). */
  readonly warnings: string[] = [];
  recordEvents = false;
  /** Called after each piece of upstream data was counted (before it is forwarded). */
  onUpstream: (() => void) | undefined;
  readonly #server: net.Server;
  readonly #targetPort: number;
  readonly #sockets = new Set<net.Socket>();
  #port = 0;

  private constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  static async start(targetPort: number): Promise<CountingProxy> {
    const proxy = new CountingProxy(targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.#port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Chunk PUTs whose answer has not come back. */
  chunksInFlight(): ProxyRequest[] {
    return this.requests.filter((request) => request.isChunk && request.answeredAt === undefined);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    this.connections += 1;
    const upstream: Upstream = {
      id: this.connections,
      head: Buffer.alloc(0),
      body: undefined,
      blind: false,
      requests: [],
    };
    const server = net.connect(this.#targetPort, '127.0.0.1');
    for (const socket of [client, server]) {
      this.#sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        client.destroy();
        server.destroy();
      });
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        server.destroy();
      });
    }
    client.on('data', (data: Buffer) => {
      const t = performance.now();
      this.wireUp += data.length;
      const payload = this.#parseUp(upstream, data, t);
      this.payloadUp += payload;
      if (this.recordEvents) this.events.push({ t, wire: data.length, payload });
      this.onUpstream?.();
      forward(data, client, server);
    });
    server.on('data', (data: Buffer) => {
      const t = performance.now();
      this.wireDown += data.length;
      const request = upstream.requests.find((r) => r.answeredAt === undefined);
      if (request) {
        request.answeredAt = t;
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(data.subarray(0, 16).toString('latin1'));
        request.status = status ? Number(status[1]) : undefined;
        upstream.requests.splice(upstream.requests.indexOf(request), 1);
      }
      forward(data, server, client);
    });
    client.on('end', () => server.end());
    server.on('end', () => client.end());
  }

  /** Follows the request framing; returns how many of these bytes were chunk body bytes. */
  #parseUp(up: Upstream, data: Buffer, t: number): number {
    if (up.blind) return 0;
    let payload = 0;
    let offset = 0;
    while (offset < data.length) {
      if (up.body) {
        const take = Math.min(up.body.remaining, data.length - offset);
        const { request } = up.body;
        request.bodyBytes += take;
        if (request.isChunk) payload += take;
        up.body.remaining -= take;
        offset += take;
        if (up.body.remaining === 0) {
          request.sentAt = t;
          up.body = undefined;
        }
        continue;
      }
      const before = up.head.length;
      up.head = Buffer.concat([up.head, data.subarray(offset)]);
      const end = up.head.indexOf(HEAD_END);
      if (end < 0) {
        if (up.head.length > MAX_HEAD) this.#blind(up, 'a request head longer than 64 KiB');
        return payload;
      }
      const head = up.head.subarray(0, end).toString('latin1');
      offset += end + HEAD_END.length - before;
      up.head = Buffer.alloc(0);
      const [requestLine = '', ...headerLines] = head.split('\r\n');
      const [method = '', target = ''] = requestLine.split(' ');
      const headers = new Map(
        headerLines.map((line) => [
          line.slice(0, line.indexOf(':')).trim().toLowerCase(),
          line.slice(line.indexOf(':') + 1).trim(),
        ]),
      );
      if (headers.get('transfer-encoding')?.toLowerCase().includes('chunked')) {
        this.#blind(up, `${method} ${target} used chunked transfer coding`);
        return payload;
      }
      const contentLength = Number(headers.get('content-length') ?? 0);
      const pathOnly = target.split('?')[0] ?? '';
      const chunk = method === 'PUT' ? CHUNK_PATH.exec(pathOnly) : null;
      const request: ProxyRequest = {
        connection: up.id,
        method,
        path: pathOnly,
        contentLength,
        bodyBytes: 0,
        startedAt: t,
        sentAt: contentLength > 0 ? undefined : t,
        answeredAt: undefined,
        status: undefined,
        isChunk: chunk !== null,
        chunkIndex: chunk ? Number(chunk[2]) : undefined,
        sessionId: chunk ? decodeURIComponent(chunk[1]!) : undefined,
      };
      this.requests.push(request);
      up.requests.push(request);
      if (contentLength > 0) up.body = { request, remaining: contentLength };
    }
    return payload;
  }

  #blind(up: Upstream, why: string): void {
    up.blind = true;
    this.warnings.push(`connection ${up.id}: ${why}; counting only wire bytes on it from here`);
  }
}

/** Writes with backpressure: stop reading `from` until `to` drained. */
function forward(data: Buffer, from: net.Socket, to: net.Socket): void {
  if (to.destroyed) return;
  if (!to.write(data)) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}
