import http from 'node:http';
import type { AddressInfo } from 'node:net';

const CHUNK_URL = /\/chunks\/(\d+)$/;

/**
 * A real HTTP reverse proxy in front of the server that holds back chunk PUTs (before any of
 * their bytes reach the server) whose index is `limit` or more; `open(limit)` moves the line and
 * passes on what it now allows. Every other request goes through at once. A test uses it to keep
 * an upload in progress, at a known point, for as long as it needs, without timing.
 */
export class RequestGateFront {
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #held: { index: number; pass: () => void }[] = [];
  #limit: number;
  #url = '';

  private constructor(target: string, limit: number) {
    this.#target = new URL(target);
    this.#limit = limit;
    this.#server = http.createServer((req, res) => this.#arrive(req, res));
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(target: string, limit: number): Promise<RequestGateFront> {
    const front = new RequestGateFront(target, limit);
    await new Promise<void>((resolve) => front.#server.listen(0, '127.0.0.1', resolve));
    front.#url = `http://127.0.0.1:${(front.#server.address() as AddressInfo).port}`;
    return front;
  }

  get url(): string {
    return this.#url;
  }

  /** Chunk requests held back now. */
  get held(): number {
    return this.#held.length;
  }

  /** Lets chunks below `limit` through (Infinity: all), the held ones included. */
  open(limit: number): void {
    this.#limit = limit;
    for (const held of [...this.#held]) {
      if (held.index >= limit) continue;
      this.#held.splice(this.#held.indexOf(held), 1);
      held.pass();
    }
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #arrive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const match = req.method === 'PUT' ? CHUNK_URL.exec(req.url ?? '') : null;
    const index = match ? Number(match[1]) : undefined;
    const pass = (): void => this.#forward(req, res);
    if (index !== undefined && index >= this.#limit) {
      const held = { index, pass };
      this.#held.push(held);
      // A client that gave up on it (a stall timeout) is not passed on later.
      res.on('close', () => {
        const at = this.#held.indexOf(held);
        if (at >= 0) this.#held.splice(at, 1);
      });
    } else pass();
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (res.destroyed) return;
    const upstream = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
