import type http from 'node:http';
import { chunkIndexOf, HttpFront } from './http-front.js';

/**
 * A real HTTP reverse proxy in front of the server that holds back chunk PUTs (before any of
 * their bytes reach the server) whose index is `limit` or more; `open(limit)` moves the line and
 * passes on what it now allows. Every other request goes through at once. A test uses it to keep
 * an upload in progress, at a known point, for as long as it needs, without timing.
 */
export class RequestGateFront {
  // Set by start(), before anyone knows the front's address.
  #front!: HttpFront;
  readonly #held: { index: number; pass: () => void }[] = [];
  #limit: number;

  private constructor(limit: number) {
    this.#limit = limit;
  }

  static async start(target: string, limit: number): Promise<RequestGateFront> {
    const gate = new RequestGateFront(limit);
    gate.#front = await HttpFront.start(target, (req, res) => gate.#arrive(req, res));
    return gate;
  }

  get url(): string {
    return this.#front.url;
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

  close(): Promise<void> {
    return this.#front.close();
  }

  #arrive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const index = chunkIndexOf(req);
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
    this.#front.forward(req, res, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
  }
}
