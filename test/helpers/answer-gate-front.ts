import http from 'node:http';
import type { AddressInfo } from 'node:net';

const CHUNK_URL = /\/chunks\/(\d+)$/;

/**
 * A real HTTP reverse proxy in front of the server that holds back the server's answer to each
 * chunk PUT until `release(index, seen)` says so (`seen`: the chunk indexes whose requests have
 * begun). A client that waits for chunk n's answer before it starts chunk n + 1 never gets it
 * when the gate waits for n + 1: the tests use that to show, without any timing, that chunks are
 * pipelined. It records the most chunk requests open at once.
 */
export class AnswerGateFront {
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #release: (index: number, seen: ReadonlySet<number>) => boolean;
  readonly #seen = new Set<number>();
  readonly #held: { index: number; send: () => void }[] = [];
  #open = 0;
  #url = '';
  /** The most chunk requests open (begun, not answered) at the same time. */
  maxOpen = 0;

  private constructor(target: string, release: (index: number, seen: ReadonlySet<number>) => boolean) {
    this.#target = new URL(target);
    this.#release = release;
    this.#server = http.createServer((req, res) => this.#forward(req, res));
    this.#server.keepAliveTimeout = 1000;
  }

  static async start(
    target: string,
    release: (index: number, seen: ReadonlySet<number>) => boolean,
  ): Promise<AnswerGateFront> {
    const front = new AnswerGateFront(target, release);
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

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const match = req.method === 'PUT' ? CHUNK_URL.exec(req.url ?? '') : null;
    const index = match ? Number(match[1]) : undefined;
    if (index !== undefined) {
      this.#seen.add(index);
      this.#open += 1;
      this.maxOpen = Math.max(this.maxOpen, this.#open);
      res.on('close', () => (this.#open -= 1));
      this.#pump();
    }
    const upstream = http.request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (part: Buffer) => parts.push(part));
        answer.on('end', () => {
          const send = (): void => {
            if (res.destroyed) return;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(parts));
          };
          if (index === undefined) send();
          else {
            this.#held.push({ index, send });
            this.#pump();
          }
        });
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  /** Sends every held answer the gate now lets through. */
  #pump(): void {
    for (const held of [...this.#held]) {
      if (!this.#release(held.index, this.#seen)) continue;
      this.#held.splice(this.#held.indexOf(held), 1);
      held.send();
    }
  }
}
