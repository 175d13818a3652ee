import http from 'node:http';
import type { AddressInfo } from 'node:net';

const CHUNK_URL = /\/chunks\/(\d+)$/;

/** The chunk index of a native chunk PUT; undefined for any other request. */
export function chunkIndexOf(req: http.IncomingMessage): number | undefined {
  const match = req.method === 'PUT' ? CHUNK_URL.exec(req.url ?? '') : null;
  return match ? Number(match[1]) : undefined;
}

/**
 * A real HTTP server on 127.0.0.1 (a free port) in front of `target`: every request goes to the
 * handler, which passes it on with `forward` when it chooses. The gates of the tests are built
 * on it (request-gate-front.ts, answer-gate-front.ts).
 */
export class HttpFront {
  readonly #server: http.Server;
  readonly #target: URL;
  #url = '';

  private constructor(target: string, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
    this.#target = new URL(target);
    this.#server = http.createServer(handle);
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(
    target: string,
    handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  ): Promise<HttpFront> {
    const front = new HttpFront(target, handle);
    await new Promise<void>((resolve) => front.#server.listen(0, '127.0.0.1', resolve));
    front.#url = `http://127.0.0.1:${(front.#server.address() as AddressInfo).port}`;
    return front;
  }

  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends `req` on to the target and gives its answer to `onAnswer`; a failure on either side ends `res`. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, onAnswer: (answer: http.IncomingMessage) => void): void {
    const upstream = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        onAnswer(answer);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
