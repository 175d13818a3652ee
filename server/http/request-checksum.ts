import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import { headers } from '../../common/protocol/native-protocol.js';
import { checkRequestChecksum, COVERED_HEADERS, requestChecksum } from '../../common/protocol/request-checksum.js';

/**
 * The server side of `X-Request-Checksum` (common/protocol/request-checksum.ts): the CRC-32 of
 * the method, the request-target as it arrived, the covered headers and a JSON body's bytes.
 * Absent: accepted as before (curl, older agents). Malformed: 400 INVALID_FIELD. Different:
 * 400 REQUEST_CHECKSUM_MISMATCH, and nothing is done with the request; a raw body is then left
 * unread, and Node drains it after the answer (it is never stored).
 *
 * The error for `req`, or undefined when it may go on. `jsonBody` is the JSON body's bytes as
 * read, undefined for a request whose body is raw (covered by the chunk CRC or the SHA-256) or
 * absent.
 */
export function requestChecksumError(req: IncomingMessage, jsonBody: Uint8Array | undefined): UploadError | undefined {
  const sent = single(req.headers[headers.requestChecksum]);
  if (sent === undefined || sent === '') return undefined;
  const received = {
    method: req.method ?? '',
    // Express keeps what arrived in originalUrl (req.url loses a mount path); node:http's url is
    // the request-target exactly as it was on the wire.
    target: (req as Partial<Request>).originalUrl ?? req.url ?? '',
    headers: Object.fromEntries(COVERED_HEADERS.map((name) => [name, single(req.headers[name])])),
    ...(jsonBody ? { jsonBody } : {}),
  };
  const outcome = checkRequestChecksum(sent, received);
  if (outcome === 'malformed') {
    const shown = JSON.stringify(sent.slice(0, 40));
    return new UploadError(
      'INVALID_FIELD',
      `the ${headers.requestChecksum} header must be "crc32:" and 8 hex digits, not ${shown}`,
    );
  }
  if (outcome === 'mismatch') {
    return new UploadError(
      'REQUEST_CHECKSUM_MISMATCH',
      `The request was damaged in transit (or changed by a proxy): its ${headers.requestChecksum} is ${sent.trim()}, ` +
        `but the request as received gives ${requestChecksum(received)}; nothing was done, send it again`,
    );
  }
  return undefined;
}

/**
 * For native routes without a JSON body (a raw chunk or file, a cancel): checks the request
 * checksum before any of the body is read.
 */
export const checkRequestChecksumFirst: RequestHandler = (req, _res, next) => {
  next(requestChecksumError(req, undefined));
};

/** A header value as one string (Node joins a repeated custom header with ", "; a few come as arrays). */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
