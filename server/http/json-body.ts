import type { IncomingMessage } from 'node:http';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import { MAX_METADATA_BYTES } from '../../common/protocol/native-protocol.js';
import { requestChecksumError } from './request-checksum.js';

/** JSON bodies are small (metadata is at most 64 KiB); anything larger is refused with 413. */
export const JSON_BODY_LIMIT = MAX_METADATA_BYTES + 16 * 1024;

/** The bytes of each parsed JSON body (decoded, if it had a Content-Encoding), for the request checksum. */
const bodyBytes = new WeakMap<IncomingMessage, Buffer>();

const parse = express.json({
  limit: JSON_BODY_LIMIT,
  type: ['application/json', 'application/*+json'],
  verify: (req, _res, bytes) => {
    bodyBytes.set(req, bytes);
  },
});

/**
 * The deepest nesting of objects and arrays accepted in a JSON body. JSON.parse copes with any
 * depth, but JSON.stringify and other recursive consumers (the metadata size check, the session
 * store, logs) overflow the stack a few thousand levels down: 80 KiB of `[` is 80,000 levels.
 */
export const MAX_JSON_DEPTH = 64;

/** A body of another type is refused with 415 (body-parser left it unread). */
const mustBeJson: RequestHandler = (req, _res, next) => {
  if (req.body !== undefined) {
    next();
    return;
  }
  const type = req.headers['content-type'];
  next(
    new UploadError(
      'UNSUPPORTED_MEDIA_TYPE',
      `The request body must be JSON (Content-Type: application/json), ` +
        `not ${type ? JSON.stringify(type) : 'missing'}`,
    ),
  );
};

/** JSON nested deeper than MAX_JSON_DEPTH is refused with 400. */
const notTooDeep: RequestHandler = (req, _res, next) => {
  if (depthOver(req.body, MAX_JSON_DEPTH)) {
    next(new UploadError('BAD_REQUEST', `The JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`));
    return;
  }
  next();
};

/**
 * Parses a JSON body; a body of another type is refused with 415, malformed JSON with 400 and
 * JSON nested deeper than MAX_JSON_DEPTH with 400 (via the error handler), so a handler always
 * sees a parsed value that is safe to walk recursively.
 */
export const jsonBody: RequestHandler[] = [parse, mustBeJson, notTooDeep];

/**
 * A body that could not be parsed is first checked against its X-Request-Checksum: a byte
 * damaged in transit that breaks the JSON is reported as damage (send it again), not as the
 * client's malformed JSON.
 */
const damagedOrMalformed: ErrorRequestHandler = (error, req, _res, next) => {
  const bytes = bodyBytes.get(req);
  next((bytes && requestChecksumError(req, bytes)) || error);
};

/** Checks X-Request-Checksum over the request with its JSON body's bytes (when it sent one). */
const checksumWithBody: RequestHandler = (req, _res, next) => {
  next(requestChecksumError(req, bodyBytes.get(req)));
};

/**
 * jsonBody for the native routes that change state: the request checksum (when sent) is checked
 * once the bounded body has been read, before anything looks at the body's content.
 */
export const checkedJsonBody: (RequestHandler | ErrorRequestHandler)[] = [
  parse,
  damagedOrMalformed,
  mustBeJson,
  checksumWithBody,
  notTooDeep,
];

/** Whether objects and arrays nest deeper than `limit` in `value` (walked without recursion). */
export function depthOver(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(node))
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}
