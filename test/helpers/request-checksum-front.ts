import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRequestChecksum } from '../../common/protocol/request-checksum.js';
import { headers as protocolHeaders } from '../../common/protocol/native-protocol.js';

/** One native request as the front received it. */
export interface CheckedRequest {
  method: string;
  /** The request-target exactly as received. */
  target: string;
  /** What checkRequestChecksum said about its X-Request-Checksum. */
  result: 'ok' | 'absent' | 'malformed' | 'mismatch';
  /** True when the front refused it (400 REQUEST_CHECKSUM_MISMATCH) instead of forwarding it. */
  refused: boolean;
  /** Request body bytes received. */
  bodyBytes: number;
  /** The answer's status (once known). */
  status: number | undefined;
}

/**
 * A real HTTP front for tests of the agent's request checksum: every native request (under /v1)
 * is checked against its `X-Request-Checksum` with the shared `checkRequestChecksum`, on the
 * request-target, headers and (JSON) body exactly as they arrived, and logged. With `refuse`
 * (the default) a request whose checksum does not match is answered as the agreed server
 * answers it, 400 REQUEST_CHECKSUM_MISMATCH, its body drained and nothing forwarded; every other
 * request is forwarded to the real server. Put the fault proxy between the agent and this front
 * to damage bytes on the way.
 */
export class RequestChecksumFront {
  readonly log: CheckedRequest[] = [];
  readonly #server: http.Server;
  readonly #target: URL;
  readonly #agent = new http.Agent({ keepAlive: true });
  refuse = true;

  private constructor(target: string) {
    this.#target = new URL(target);
    this.#server = http.createServer((req, res) =>
      this.#handle(req, res).catch(() => {
        // The client went away mid-request (an aborted upload): nothing to answer.
        res.destroy();
      }),
    );
  }

  static async start(target: string): Promise<RequestChecksumFront> {
    const front = new RequestChecksumFront(target);
    await new Promise<void>((resolve) => front.#server.listen(0, '127.0.0.1', resolve));
    return front;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Logged requests matching a method and a target pattern. */
  requests(method: string, target: RegExp): CheckedRequest[] {
    return this.log.filter((entry) => entry.method === method && target.test(entry.target));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const parts: Buffer[] = [];
    for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
    const body = Buffer.concat(parts);
    if (!target.startsWith('/v1/')) {
      this.#forward(req, res, body, undefined);
      return;
    }
    const json = (req.headers['content-type'] ?? '').startsWith('application/json');
    const headerValues: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(req.headers))
      headerValues[name] = Array.isArray(value) ? value.join(', ') : value;
    const result = checkRequestChecksum(headerValues[protocolHeaders.requestChecksum], {
      method,
      target,
      headers: headerValues,
      ...(json && body.length > 0 ? { jsonBody: body } : {}),
    });
    const entry: CheckedRequest = {
      method,
      target,
      result,
      refused: false,
      bodyBytes: body.length,
      status: undefined,
    };
    this.log.push(entry);
    if (result === 'mismatch' && this.refuse) {
      entry.refused = true;
      entry.status = 400;
      const answer = JSON.stringify({
        success: false,
        error: 'the request was damaged in transit: its X-Request-Checksum does not match; send it again',
        code: 'REQUEST_CHECKSUM_MISMATCH',
      });
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
      return;
    }
    this.#forward(req, res, body, entry);
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, entry: CheckedRequest | undefined): void {
    const upstream = http.request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.#target.host },
        agent: this.#agent,
      },
      (response) => {
        if (entry) entry.status = response.statusCode;
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    upstream.end(body);
  }
}
