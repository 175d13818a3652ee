import type { IncomingMessage } from 'node:http';
import { UploadError } from '../../common/errors/upload-error.js';
import { headers, MAX_METADATA_BYTES } from '../../common/protocol/native-protocol.js';
import { hexDigest, preview } from './fields.js';
import { depthOver, MAX_JSON_DEPTH } from './json-body.js';
import { rawBodyEncoding, type BodyEncoding } from './raw-body-headers.js';

/** What the headers of `PUT /v1/files/<path>` say (see docs/http-api.md). */
export interface WholeFileHeaders {
  encoding: BodyEncoding;
  /** Content-Length: the body's length on the wire (the file's size unless gzip-encoded). */
  length: number;
  /** `x-content-sha256`, lowercase. */
  sha256: string;
  /** `x-upload-metadata`, decoded. */
  metadata: Record<string, unknown> | undefined;
  /** `x-upload-replace: true`. */
  replace: boolean;
}

/**
 * Reads and checks the headers of a whole-file upload before any of its body is read: 415 for
 * a wrong type or encoding, 411 without Content-Length (chunked bodies have none: the size must
 * be known up front), 400 for a missing or malformed `x-content-sha256`, metadata that is not
 * base64url JSON of an object, or a replace flag other than true/false.
 */
export function readWholeFileHeaders(req: IncomingMessage): WholeFileHeaders {
  const encoding = rawBodyEncoding(req, 'a file');
  const declared = req.headers['content-length'];
  if (declared === undefined) {
    throw new UploadError(
      'LENGTH_REQUIRED',
      "PUT /v1/files needs a Content-Length: the file's size must " +
        'be known before its body (send it without chunked encoding)',
    );
  }
  // Node's parser has already refused a Content-Length that is not a decimal number.
  const length = Number(declared);
  const sha = single(req, headers.contentSha256);
  if (sha === undefined)
    throw new UploadError(
      'INVALID_FIELD',
      `the ${headers.contentSha256} header (the file's SHA-256, 64 hex digits) is required`,
    );
  const sha256 = hexDigest(headers.contentSha256, sha.trim(), 64);
  const metadataText = single(req, headers.uploadMetadata);
  const metadata = metadataText === undefined ? undefined : decodeMetadata(metadataText.trim());
  const replaceText = single(req, headers.uploadReplace)?.trim().toLowerCase();
  if (replaceText !== undefined && replaceText !== 'true' && replaceText !== 'false') {
    throw new UploadError(
      'INVALID_FIELD',
      `the ${headers.uploadReplace} header must be true or false, not ${preview(replaceText)}`,
    );
  }
  return { encoding, length, sha256, metadata, replace: replaceText === 'true' };
}

/** A header sent at most once (Node joins repeated custom headers with ", "). */
function single(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new UploadError('INVALID_FIELD', `the ${name} header must be sent once`);
  return value;
}

function decodeMetadata(text: string): Record<string, unknown> {
  const field = headers.uploadMetadata;
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text))
    throw new UploadError('INVALID_FIELD', `the ${field} header must be base64url-encoded JSON, not ${preview(text)}`);
  const json = Buffer.from(text, 'base64url');
  if (json.length > MAX_METADATA_BYTES)
    throw new UploadError('INVALID_FIELD', `the ${field} header is larger than ${MAX_METADATA_BYTES} bytes of JSON`);
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch (error) {
    throw new UploadError('INVALID_FIELD', `the ${field} header does not decode to JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UploadError('INVALID_FIELD', `the ${field} header must decode to a JSON object, not ${preview(value)}`);
  }
  if (depthOver(value, MAX_JSON_DEPTH))
    throw new UploadError('INVALID_FIELD', `the ${field} header's JSON is nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value as Record<string, unknown>;
}
