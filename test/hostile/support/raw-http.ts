import net from 'node:net';

/**
 * HTTP/1.1 over a raw TCP socket, for hostile-input tests: the test decides every byte that goes
 * out (broken framing, wrong lengths, bodies cut short), and reads back whatever the server
 * answers. Well-framed requests reuse keep-alive connections; ill-framed ones get a fresh
 * connection of their own, which is closed (or half-closed) when the case says so.
 */

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawExchange {
  /** Every complete response read, in order (1xx interim answers left out). */
  responses: RawResponse[];
  /** True when the server closed the connection. */
  closed: boolean;
  /** True when the server neither answered nor closed the connection before the deadline. */
  hung: boolean;
  /** Bytes read that did not form a complete response. */
  leftover: Buffer;
  /** The request went on a kept-alive connection that an earlier request used. */
  reused: boolean;
  /** On a reused connection, the label of the request before this one (for failure reports). */
  previous?: string | undefined;
}

export interface RawRequest {
  /** The bytes to send; several pieces are written one after the other (with `pieceDelayMs` between). */
  pieces: Buffer[];
  /** The request method (HEAD answers carry no body). */
  method: string;
  /**
   * `response`: a well-framed request on a keep-alive connection; done at the first complete
   * answer. `close`: a fresh connection, read until the server closes it (after `end` when set).
   */
  mode: 'response' | 'close';
  /** Half-close (FIN) after the last piece: the client "hangs up" with its request cut short. */
  end?: boolean;
  /** Destroy the socket right after writing (an abrupt disconnect, no answer expected). */
  destroy?: boolean;
  pieceDelayMs?: number;
  /** A description kept with the connection, reported if the next request on it goes wrong. */
  label?: string;
}

/** Generous: an answer is normally there in milliseconds; this only bounds a real hang. */
const HANG_DEADLINE_MS = 15_000;
/** In `close` mode, how long the server may stay silent before the client half-closes. */
const QUIET_MS = 300;

export class RawHttp {
  readonly #port: number;
  readonly #host: string;
  readonly #idle: net.Socket[] = [];
  readonly #open = new Set<net.Socket>();
  readonly #labels = new WeakMap<net.Socket, string>();

  constructor(url: string) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port);
  }

  /** Sends one request and collects the answer (see RawRequest.mode). */
  async send(request: RawRequest): Promise<RawExchange> {
    const reuse = request.mode === 'response' && !request.end && !request.destroy;
    const idle = reuse ? this.#idle.pop() : undefined;
    const socket = idle ?? (await this.#connect());
    const previous = idle ? this.#labels.get(idle) : undefined;
    if (request.label !== undefined) this.#labels.set(socket, request.label);
    const reader = new ResponseReader(socket, request.method);
    try {
      for (const [i, piece] of request.pieces.entries()) {
        if (i > 0 && request.pieceDelayMs) await delay(request.pieceDelayMs);
        if (socket.destroyed) break;
        socket.write(piece);
      }
      if (request.destroy) {
        socket.destroy();
        return { responses: [], closed: true, hung: false, leftover: Buffer.alloc(0), reused: idle !== undefined };
      }
      if (request.end && !socket.destroyed) socket.end();
      if (request.mode === 'response') {
        const hung = !(await reader.waitFor(() => reader.responses.length > 0 || reader.closed, HANG_DEADLINE_MS));
        const last = reader.responses.at(-1);
        const keep =
          reuse &&
          !hung &&
          !reader.closed &&
          reader.leftover.length === 0 &&
          last !== undefined &&
          last.headers.connection?.toLowerCase() !== 'close';
        if (keep) {
          reader.detach();
          this.#idle.push(socket);
        } else {
          socket.destroy();
        }
        return { ...reader.result(hung), reused: idle !== undefined, previous };
      }
      // `close` mode: wait for the server to close; if it goes quiet, hang up and wait again.
      let closed = await reader.waitFor(() => reader.closed, QUIET_MS, true);
      if (!closed && !socket.destroyed) {
        socket.end();
        closed = await reader.waitFor(() => reader.closed, HANG_DEADLINE_MS);
      }
      socket.destroy();
      return { ...reader.result(!closed), reused: false };
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  /** Closes every connection (keep-alive ones included). */
  close(): void {
    for (const socket of this.#open) socket.destroy();
    this.#idle.length = 0;
  }

  /** Number of connections this client holds open. */
  get openConnections(): number {
    return this.#open.size;
  }

  #connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port: this.#port, host: this.#host, noDelay: true });
      this.#open.add(socket);
      socket.once('close', () => {
        this.#open.delete(socket);
        const at = this.#idle.indexOf(socket);
        if (at >= 0) this.#idle.splice(at, 1);
      });
      // Errors (ECONNRESET when the server drops a connection) only end the exchange.
      socket.on('error', () => undefined);
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
  }
}

/** Parses the answers arriving on one socket, incrementally. */
class ResponseReader {
  readonly responses: RawResponse[] = [];
  closed = false;
  #buffer = Buffer.alloc(0);
  readonly #socket: net.Socket;
  readonly #method: string;
  #wake: (() => void) | undefined;
  #lastData = Date.now();
  readonly #onData = (data: Buffer): void => {
    this.#lastData = Date.now();
    this.#buffer = Buffer.concat([this.#buffer, data]);
    this.#parse();
    this.#wake?.();
  };
  readonly #onClose = (): void => {
    this.closed = true;
    this.#parse(true);
    this.#wake?.();
  };

  constructor(socket: net.Socket, method: string) {
    this.#socket = socket;
    this.#method = method.toUpperCase();
    socket.on('data', this.#onData);
    socket.once('close', this.#onClose);
    if (socket.destroyed) this.closed = true;
  }

  get leftover(): Buffer {
    return this.#buffer;
  }

  detach(): void {
    this.#socket.off('data', this.#onData);
    this.#socket.off('close', this.#onClose);
  }

  result(hung: boolean): Omit<RawExchange, 'reused'> {
    this.detach();
    return { responses: this.responses, closed: this.closed, hung, leftover: this.#buffer };
  }

  /**
   * Waits until `condition` holds or `ms` pass (measured from the last byte received when
   * `sinceLastData`); resolves with whether the condition held.
   */
  async waitFor(condition: () => boolean, ms: number, sinceLastData = false): Promise<boolean> {
    const start = Date.now();
    for (;;) {
      if (condition()) return true;
      const left = (sinceLastData ? this.#lastData : start) + ms - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  #parse(atClose = false): void {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buffer.subarray(0, end).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
      if (!match) return;
      const status = Number(match[1]);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const rest = this.#buffer.subarray(end + 4);
      if (status >= 100 && status < 200) {
        this.#buffer = rest;
        continue;
      }
      let body: Buffer;
      let consumed: number;
      if (this.#method === 'HEAD' || status === 204 || status === 304) {
        body = Buffer.alloc(0);
        consumed = 0;
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const decoded = decodeChunked(rest);
        if (!decoded) return;
        ({ body, consumed } = decoded);
      } else if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (rest.length < length) return;
        body = rest.subarray(0, length);
        consumed = length;
      } else {
        if (!atClose) return;
        body = rest;
        consumed = rest.length;
      }
      this.responses.push({ status, headers, body: Buffer.from(body) });
      this.#buffer = rest.subarray(consumed);
    }
  }
}

function decodeChunked(data: Buffer): { body: Buffer; consumed: number } | undefined {
  const pieces: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) return undefined;
    at = lineEnd + 2;
    if (size === 0) {
      const trailerEnd = data.indexOf('\r\n', at);
      if (trailerEnd < 0) return undefined;
      return { body: Buffer.concat(pieces), consumed: trailerEnd + 2 };
    }
    if (data.length < at + size + 2) return undefined;
    pieces.push(data.subarray(at, at + size));
    at += size + 2;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The JSON of an answer's body, or undefined when it is not JSON. */
export function jsonOf(response: RawResponse): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(response.body.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
