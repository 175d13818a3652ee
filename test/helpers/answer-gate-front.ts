import type http from 'node:http';
import { chunkIndexOf, HttpFront } from './http-front.js';

/**
 * A real HTTP reverse proxy in front of the server that holds back the server's answer to each
 * chunk PUT until `release(index, seen)` says so (`seen`: the chunk indexes whose requests have
 * begun). A client that waits for chunk n's answer before it starts chunk n + 1 never gets it
 * when the gate waits for n + 1: the tests use that to show, without any timing, that chunks are
 * pipelined. It records the most chunk requests open at once.
 */
export class AnswerGateFront {
  // Set by start(), before anyone knows the front's address.
  #front!: HttpFront;
  readonly #release: (index: number, seen: ReadonlySet<number>) => boolean;
  readonly #seen = new Set<number>();
  readonly #held: { index: number; send: () => void }[] = [];
  #open = 0;
  /** The most chunk requests open (begun, not answered) at the same time. */
  maxOpen = 0;

  private constructor(release: (index: number, seen: ReadonlySet<number>) => boolean) {
    this.#release = release;
  }

  static async start(
    target: string,
    release: (index: number, seen: ReadonlySet<number>) => boolean,
  ): Promise<AnswerGateFront> {
    const gate = new AnswerGateFront(release);
    gate.#front = await HttpFront.start(target, (req, res) => gate.#forward(req, res));
    return gate;
  }

  get url(): string {
    return this.#front.url;
  }

  close(): Promise<void> {
    return this.#front.close();
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const index = chunkIndexOf(req);
    if (index !== undefined) {
      this.#seen.add(index);
      this.#open += 1;
      this.maxOpen = Math.max(this.maxOpen, this.#open);
      res.on('close', () => (this.#open -= 1));
      this.#pump();
    }
    this.#front.forward(req, res, (answer) => {
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
    });
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
