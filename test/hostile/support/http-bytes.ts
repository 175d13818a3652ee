import { gzipSync } from 'node:zlib';

/**
 * Byte-exact HTTP requests for hostile-input tests: the request line, headers (duplicates and
 * odd values allowed) and a body framed correctly or deliberately wrong.
 */

/** How the body goes on the wire. */
export type Framing =
  | { kind: 'length' }
  /** No Content-Length and no Transfer-Encoding: the body bytes read as the next request. */
  | { kind: 'no-length' }
  /** Content-Length smaller than the body: the rest reads as the next request. */
  | { kind: 'length-short'; by: number }
  /** Content-Length larger than the body, then the client hangs up. */
  | { kind: 'length-long'; by: number }
  /** A correct Content-Length, but only a part of the body is sent before hanging up (FIN) or resetting. */
  | { kind: 'cut'; keep: number; abrupt: boolean }
  | { kind: 'chunked'; pieces: number }
  | { kind: 'chunked-bad'; variant: ChunkedFault }
  | { kind: 'length-invalid'; value: string }
  | { kind: 'length-twice'; other: number }
  | { kind: 'length-and-chunked' }
  /** Correct Content-Length, with `Expect: 100-continue`. */
  | { kind: 'expect-continue' }
  /** Correct Content-Length, the bytes written in several pieces with small pauses. */
  | { kind: 'trickle'; pieces: number };

export const chunkedFaults = [
  'bad-hex',
  'missing-crlf',
  'overflow',
  'extension',
  'no-last-chunk',
  'negative',
  'size-too-small',
  'size-too-large',
  'lf-only',
] as const;
export type ChunkedFault = (typeof chunkedFaults)[number];

export interface RequestSpec {
  method: string;
  /** The request-target as sent (not encoded here). */
  target: string;
  headers: [string, string][];
  body: Buffer;
  framing: Framing;
  /** `HTTP/1.1` unless given. */
  version?: string;
}

export interface WireRequest {
  pieces: Buffer[];
  mode: 'response' | 'close';
  end: boolean;
  destroy: boolean;
  pieceDelayMs: number;
}

/** The bytes of a request and how the client must treat the connection. */
export function toWire(spec: RequestSpec): WireRequest {
  const { framing, body } = spec;
  const headers = [...spec.headers];
  let payload: Buffer = body;
  let pieces: Buffer[] | undefined;
  let mode: WireRequest['mode'] = 'close';
  let end = false;
  let destroy = false;
  let pieceDelayMs = 0;
  switch (framing.kind) {
    case 'length':
      headers.push(['Content-Length', String(body.length)]);
      mode = 'response';
      break;
    case 'no-length':
      break;
    case 'length-short':
      headers.push(['Content-Length', String(Math.max(0, body.length - framing.by))]);
      break;
    case 'length-long':
      headers.push(['Content-Length', String(body.length + framing.by)]);
      end = true;
      break;
    case 'cut':
      headers.push(['Content-Length', String(body.length + 1)]);
      payload = body.subarray(0, Math.floor(body.length * framing.keep));
      end = !framing.abrupt;
      destroy = framing.abrupt;
      break;
    case 'chunked':
      headers.push(['Transfer-Encoding', 'chunked']);
      payload = encodeChunked(body, framing.pieces);
      mode = 'response';
      break;
    case 'chunked-bad':
      headers.push(['Transfer-Encoding', 'chunked']);
      payload = encodeChunkedBadly(body, framing.variant);
      end = framing.variant === 'no-last-chunk' || framing.variant === 'size-too-large';
      break;
    case 'length-invalid':
      headers.push(['Content-Length', framing.value]);
      end = true;
      break;
    case 'length-twice':
      headers.push(['Content-Length', String(body.length)], ['Content-Length', String(framing.other)]);
      end = true;
      break;
    case 'length-and-chunked':
      headers.push(['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']);
      payload = encodeChunked(body, 1);
      end = true;
      break;
    case 'expect-continue':
      headers.push(['Content-Length', String(body.length)], ['Expect', '100-continue']);
      mode = 'response';
      break;
    case 'trickle': {
      headers.push(['Content-Length', String(body.length)]);
      mode = 'response';
      pieceDelayMs = 2;
      break;
    }
  }
  const head = Buffer.from(
    `${spec.method} ${spec.target} ` +
      `${spec.version ?? 'HTTP/1.1'}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`,
    'utf8',
  );
  const all = Buffer.concat([head, payload]);
  if (framing.kind === 'trickle') {
    const size = Math.max(1, Math.ceil(all.length / framing.pieces));
    pieces = [];
    for (let at = 0; at < all.length; at += size) pieces.push(all.subarray(at, at + size));
  }
  return { pieces: pieces ?? [all], mode, end, destroy, pieceDelayMs };
}

export function encodeChunked(body: Buffer, pieces: number): Buffer {
  const out: Buffer[] = [];
  const size = Math.max(1, Math.ceil(body.length / Math.max(1, pieces)));
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size);
    out.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

function encodeChunkedBadly(body: Buffer, fault: ChunkedFault): Buffer {
  const size = body.length.toString(16);
  switch (fault) {
    case 'bad-hex':
      return Buffer.concat([Buffer.from(`zz${size}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    case 'missing-crlf':
      return Buffer.concat([Buffer.from(`${size}\r\n`), body, Buffer.from('0\r\n\r\n')]);
    case 'overflow':
      return Buffer.concat([Buffer.from('ffffffffffffffffffff\r\n'), body, Buffer.from('\r\n0\r\n\r\n')]);
    case 'extension':
      return Buffer.concat([Buffer.from(`${size};${'x'.repeat(20_000)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    case 'no-last-chunk':
      return Buffer.concat([Buffer.from(`${size}\r\n`), body, Buffer.from('\r\n')]);
    case 'negative':
      return Buffer.concat([Buffer.from(`-${size}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    case 'size-too-small':
      return Buffer.concat([
        Buffer.from(`${Math.max(0, body.length - 1).toString(16)}\r\n`),
        body,
        Buffer.from('\r\n0\r\n\r\n'),
      ]);
    case 'size-too-large':
      return Buffer.concat([Buffer.from(`${(body.length + 7).toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    case 'lf-only':
      return Buffer.concat([Buffer.from(`${size}\n`), body, Buffer.from('\n0\n\n')]);
  }
}

export interface FormPart {
  name: string;
  value: string | Buffer;
  /** Makes it a file part. */
  filename?: string;
  contentType?: string;
}

/** A multipart/form-data body; `closing: false` leaves out the final boundary (a form cut short). */
export function multipartBody(boundary: string, parts: readonly FormPart[], closing = true): Buffer {
  const out: Buffer[] = [];
  for (const part of parts) {
    const filename = part.filename !== undefined ? `; filename="${part.filename}"` : '';
    const disposition = `form-data; name="${part.name}"${filename}`;
    const type = part.contentType !== undefined ? `Content-Type: ${part.contentType}\r\n` : '';
    out.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`, 'utf8'));
    out.push(typeof part.value === 'string' ? Buffer.from(part.value, 'utf8') : part.value);
    out.push(Buffer.from('\r\n'));
  }
  if (closing) out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

/** A small gzip stream that inflates to `size` zero bytes (a "gzip bomb"). */
export function gzipBomb(size: number): Buffer {
  return gzipSync(Buffer.alloc(size), { level: 9 });
}

/** Marks raw JSON text inside a value given to `jsonText` (numbers JSON.stringify cannot write, broken syntax). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A JSON object as key/value pairs: duplicate keys and keys such as `__proto__` stay as given. */
export class JsonPairs {
  constructor(readonly pairs: readonly (readonly [string, unknown])[]) {}
}

/** JSON text of a value that may contain RawJson and JsonPairs pieces. */
export function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (value instanceof JsonPairs)
    return `{${value.pairs.map(([key, item]) => `${JSON.stringify(key)}:${jsonText(item)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, item]) => `${JSON.stringify(key)}:${jsonText(item)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
