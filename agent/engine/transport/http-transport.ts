import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { UploadError } from '../../../common/errors/upload-error.js';
import { API_PREFIX, headers as protocolHeaders } from '../../../common/protocol/native-protocol.js';
import { requestChecksum } from '../../../common/protocol/request-checksum.js';
import { RequestWatchdog, type WatchdogExpiry } from '../stall/request-watchdog.js';
import { httpStatusError, networkError } from './http-errors.js';
import { parseServerUrl, type ServerBase } from './server-url.js';
import type { TlsContext } from './tls-errors.js';

export interface TransportOptions {
  serverUrl: string;
  token: string | undefined;
  /** PEM CA to trust in addition to the system's (self-signed servers). */
  caFile: string | undefined;
  clientCert: string | undefined;
  clientKey: string | undefined;
  connectTimeoutMs: number;
}

/** Limits of one request attempt. */
export interface AttemptLimits {
  /** Active time allowed (throttle waits excluded). */
  timeoutMs: number;
  /** Longest time without progress. */
  stalledMs: number;
  /** Aborts the attempt from outside (stop, cancel); its reason is thrown. */
  signal?: AbortSignal | undefined;
  /** Called when the stall clock fired, before the attempt is aborted. */
  onStall?: (() => void) | undefined;
}

export interface HttpResponse<T> {
  status: number;
  body: T;
}

/** A request body produced under a watchdog (so throttle waits can hold its clocks). */
export type BodyFactory = (watchdog: RequestWatchdog, signal: AbortSignal) => AsyncIterable<Uint8Array>;

const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * HTTP(S) to the server with undici: one keep-alive Agent (custom CA and client certificate for
 * mutual TLS), the bearer token, and a watchdog on every attempt that aborts it through an
 * AbortController when it stalls or runs out of time, even while the request hangs. undici's
 * own header/body timeouts are off: the watchdog owns the clocks.
 */
export class HttpTransport {
  readonly base: ServerBase;
  readonly #agent: Agent;
  readonly #token: string | undefined;
  readonly #tls: TlsContext | undefined;

  constructor(options: TransportOptions) {
    this.base = parseServerUrl(options.serverUrl);
    this.#token = options.token;
    this.#tls = this.base.https
      ? { host: new URL(this.base.origin).hostname, caFile: options.caFile, clientCert: Boolean(options.clientCert) }
      : undefined;
    const connect: Record<string, unknown> = { timeout: options.connectTimeoutMs };
    if (options.caFile) connect.ca = [...rootCertificates, readPem(options.caFile, 'caFile')];
    if (options.clientCert || options.clientKey) {
      if (!options.clientCert || !options.clientKey) {
        throw new UploadError('TLS_CONFIG', 'clientCert and clientKey must be given together for mutual TLS');
      }
      connect.cert = readPem(options.clientCert, 'clientCert');
      connect.key = readPem(options.clientKey, 'clientKey');
    }
    this.#agent = new Agent({ connect, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
  }

  /** A JSON request; non-2xx answers throw UploadErrors carrying the server's code and message. */
  async json<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    body: unknown,
    limits: AttemptLimits,
    what: string,
  ): Promise<HttpResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      // undici sends `content-length: 0` for these (and none for GET or DELETE): said here, so
      // the length the request checksum covers is the one on the wire.
      headers['content-length'] = '0';
    }
    return this.request<T>(method, path, headers, payload ? () => once(payload) : undefined, limits, what, payload);
  }

  /**
   * One request under a watchdog. `makeBody` streams the body; the response is parsed as JSON
   * (an empty body gives undefined). A native request (under /v1) carries `X-Request-Checksum`
   * over its method, target, covered headers and `jsonBody` (common/protocol/request-checksum.ts),
   * so a server refuses it, instead of acting on it, when a byte of its path, chunk index or
   * digest was damaged on the way.
   */
  async request<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    headers: Record<string, string>,
    makeBody: BodyFactory | undefined,
    limits: AttemptLimits,
    what: string,
    jsonBody?: Uint8Array,
  ): Promise<HttpResponse<T>> {
    limits.signal?.throwIfAborted();
    const target = this.base.prefix + path;
    if (path.startsWith(`${API_PREFIX}/`)) {
      headers[protocolHeaders.requestChecksum] = requestChecksum({
        method,
        target,
        headers,
        ...(jsonBody ? { jsonBody } : {}),
      });
    }
    const controller = new AbortController();
    const onOuterAbort = (): void => controller.abort(limits.signal?.reason);
    limits.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const watchdog = new RequestWatchdog({
      stalledMs: limits.stalledMs,
      timeoutMs: limits.timeoutMs,
      onExpire: (kind) => {
        if (kind === 'stalled') limits.onStall?.();
        controller.abort(expiryError(what, kind, limits));
      },
    });
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    try {
      const response = await this.#agent.request({
        origin: this.base.origin,
        path: target,
        method,
        headers,
        // undici streams async iterables (documented), though its types only name Readable.
        body: makeBody ? (makeBody(watchdog, controller.signal) as unknown as Readable) : null,
        signal: controller.signal,
      });
      watchdog.progress();
      const text = await readText(response.body, () => watchdog.progress());
      const parsed = parseJson(text);
      if (response.statusCode >= 200 && response.statusCode < 300)
        return { status: response.statusCode, body: parsed as T };
      throw httpStatusError(what, response.statusCode, parsed ?? text, response.headers['retry-after']);
    } catch (error) {
      if (error instanceof UploadError && !controller.signal.aborted) throw error;
      if (controller.signal.aborted) {
        const reason: unknown = controller.signal.reason;
        throw reason instanceof UploadError
          ? reason
          : new UploadError('NETWORK', `${what}: aborted`, { cause: reason });
      }
      throw networkError(what, error, this.#tls);
    } finally {
      watchdog.stop();
      limits.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  /** Closes idle connections and aborts the rest. */
  async close(): Promise<void> {
    await this.#agent.destroy().catch(() => undefined);
  }
}

function expiryError(what: string, kind: WatchdogExpiry, limits: AttemptLimits): UploadError {
  return kind === 'stalled'
    ? new UploadError('STALLED', `${what}: no bytes moved for ${limits.stalledMs / 1000} s (stalledTimeout); aborted`)
    : new UploadError('TIMEOUT', `${what}: took longer than ${limits.timeoutMs / 1000} s; aborted`);
}

async function* once(payload: Buffer): AsyncIterable<Uint8Array> {
  yield payload;
}

async function readText(body: Dispatcher.ResponseData['body'], onData: () => void): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    onData();
    size += part.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      throw new UploadError('PROTOCOL', `the server's answer is longer than ${MAX_RESPONSE_BYTES} bytes`);
    }
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UploadError('TLS_CONFIG', `Cannot read ${option} ${file}: ${(error as Error).message}`, { cause: error });
  }
}
