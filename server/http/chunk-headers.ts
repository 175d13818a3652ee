import type { IncomingMessage } from 'node:http';
import { UploadError } from '../../common/errors/upload-error.js';
import { parseChunkChecksum } from '../../common/protocol/chunk-checksum.js';
import { headers } from '../../common/protocol/native-protocol.js';
import { hexDigest } from './fields.js';
import { rawBodyEncoding, type BodyEncoding } from './raw-body-headers.js';

/** What the headers of `PUT /v1/sessions/:id/chunks/:index` say (see docs/http-api.md). */
export interface ChunkHeaders {
  encoding: BodyEncoding;
  /** `x-chunk-checksum`: the CRC-32 of the decoded chunk. */
  crc: number;
  /** `x-chunk-prefix-sha256` (optional, lowercased): the SHA-256 of the file through this chunk. */
  prefixSha256: string | undefined;
}

/**
 * Reads and checks a chunk's headers before any of its body is read, against the length the
 * chunk must have: 415 for a wrong type or encoding, 400 for a missing or malformed checksum
 * and for a Content-Length other than `expectedLength` (gzip-encoded bodies are measured
 * decoded, as they arrive).
 */
export function readChunkHeaders(req: IncomingMessage, index: number, expectedLength: number): ChunkHeaders {
  const encoding = rawBodyEncoding(req, 'a chunk');
  const checksumHeader = req.headers[headers.chunkChecksum];
  const crc = parseChunkChecksum(typeof checksumHeader === 'string' ? checksumHeader : undefined);
  if (crc === undefined) {
    throw new UploadError(
      'INVALID_FIELD',
      `the ${headers.chunkChecksum} header must be "crc32:" and 8 ` +
        `hex digits, not ${JSON.stringify(checksumHeader ?? '(missing)')}`,
    );
  }
  const prefixHeader = req.headers[headers.chunkPrefixSha256];
  const prefixField =
    `the ${headers.chunkPrefixSha256} header (the SHA-256 of the file through this chunk; ` +
    'leave it out to have the chunk checked by its CRC-32)';
  if (Array.isArray(prefixHeader)) throw new UploadError('INVALID_FIELD', `${prefixField} must be sent once`);
  const prefixSha256 = prefixHeader === undefined ? undefined : hexDigest(prefixField, prefixHeader, 64);
  const declared = req.headers['content-length'];
  if (encoding === 'identity' && declared !== undefined && Number(declared) !== expectedLength) {
    throw new UploadError(
      'CHUNK_SIZE_MISMATCH',
      `chunk ${index} must be ${expectedLength} bytes, but Content-Length is ${declared}`,
    );
  }
  return { encoding, crc, prefixSha256 };
}
