import zlib from 'node:zlib';
import { formatChunkChecksum, parseChunkChecksum } from './chunk-checksum.js';
import { headers } from './native-protocol.js';

/**
 * Integrity of a request's addressing: the chunk CRC-32 covers a chunk's bytes and the SHA-256
 * the file, but not the request line, the headers or a JSON body. One damaged byte there could
 * store a file under another name, write a chunk at another index or reset a session over a
 * damaged digit of its SHA-256. `X-Request-Checksum: crc32:<8 hex>` is the CRC-32 of the
 * canonical text below; a server that finds it wrong refuses the request (400
 * REQUEST_CHECKSUM_MISMATCH) and changes nothing, and the client sends it again.
 *
 * The canonical text: lines joined by "\n" (no trailing newline):
 *   METHOD (upper case)
 *   the request-target exactly as sent (path and query, percent-encoded as on the wire)
 *   `<header>:<value or empty>` for each of COVERED_HEADERS, in that order
 *   `body:<crc32 hex of a JSON body's bytes, or empty for a raw body>` (a raw body's bytes are
 *   covered by the chunk CRC or the whole file's SHA-256 already)
 * A chunk's offset is its index times the session's chunk size, fixed by the server, so the
 * index in the request-target covers it.
 */
export const COVERED_HEADERS = [
  headers.chunkChecksum,
  headers.contentSha256,
  headers.uploadMetadata,
  headers.uploadReplace,
  'content-encoding',
  'content-length',
] as const;

export interface RequestToCheck {
  method: string;
  /** Path and query exactly as on the wire, e.g. `/v1/files/run1/a%20b.mcap`. */
  target: string;
  /** Header values by lower-case name; absent and empty are the same. */
  headers: Readonly<Record<string, string | undefined>>;
  /** A JSON body's bytes; undefined for a raw body or none. */
  jsonBody?: Uint8Array;
}

export function canonicalRequestText(request: RequestToCheck): string {
  const lines = [request.method.toUpperCase(), request.target];
  for (const name of COVERED_HEADERS) lines.push(`${name}:${request.headers[name] ?? ''}`);
  const body = request.jsonBody ? (zlib.crc32(request.jsonBody) >>> 0).toString(16).padStart(8, '0') : '';
  lines.push(`body:${body}`);
  return lines.join('\n');
}

/** The header value for a request: `crc32:<8 lowercase hex>`. */
export function requestChecksum(request: RequestToCheck): string {
  return formatChunkChecksum(zlib.crc32(Buffer.from(canonicalRequestText(request), 'utf8')));
}

/**
 * Checks a received request against its header. `absent` when the client sent none (curl,
 * older clients: accepted as before), `malformed` when the value is not `crc32:<8 hex>`.
 */
export function checkRequestChecksum(
  header: string | undefined,
  request: RequestToCheck,
): 'ok' | 'absent' | 'malformed' | 'mismatch' {
  if (header === undefined || header === '') return 'absent';
  const expected = parseChunkChecksum(header);
  if (expected === undefined) return 'malformed';
  const actual = zlib.crc32(Buffer.from(canonicalRequestText(request), 'utf8')) >>> 0;
  return actual === expected ? 'ok' : 'mismatch';
}
