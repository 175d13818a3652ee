import express, { type RequestHandler } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import { MAX_METADATA_BYTES } from '../../common/protocol/native-protocol.js';

/** JSON bodies are small (metadata is at most 64 KiB); anything larger is refused with 413. */
export const JSON_BODY_LIMIT = MAX_METADATA_BYTES + 16 * 1024;

const parse = express.json({ limit: JSON_BODY_LIMIT, type: ['application/json', 'application/*+json'] });

/**
 * Parses a JSON body; a body of another type is refused with 415 and malformed JSON with 400
 * (via the error handler), so a handler always sees a parsed value.
 */
export const jsonBody: RequestHandler[] = [
  parse,
  (req, _res, next) => {
    if (req.body === undefined) {
      const type = req.headers['content-type'];
      next(new UploadError('UNSUPPORTED_MEDIA_TYPE', `The request body must be JSON (Content-Type: application/json), not ${type ? JSON.stringify(type) : 'missing'}`));
      return;
    }
    next();
  },
];
