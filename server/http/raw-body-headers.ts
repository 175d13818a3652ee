import type { IncomingMessage } from 'node:http';
import { UploadError } from '../../common/errors/upload-error.js';

/** The transfer encodings a raw upload body may have. */
export type BodyEncoding = 'identity' | 'gzip';

/**
 * The headers every raw (non-multipart) upload body must carry: `Content-Type:
 * application/octet-stream` (415 otherwise) and no `Content-Encoding` or `identity`/`gzip`
 * (415 for any other). `what` names the body in the message ("a chunk", "a file").
 */
export function rawBodyEncoding(req: IncomingMessage, what: string): BodyEncoding {
  const encoding = contentEncoding(req);
  const [mediaType = ''] = (req.headers['content-type'] ?? '').split(';');
  const contentType = mediaType.trim().toLowerCase();
  if (contentType !== 'application/octet-stream') {
    throw new UploadError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${what} must be sent as Content-Type: application/octet-stream, ` +
        `not ${JSON.stringify(req.headers['content-type'] ?? '(none)')}`,
    );
  }
  return encoding;
}

function contentEncoding(req: IncomingMessage): BodyEncoding {
  const value = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (value === 'identity' || value === '') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  throw new UploadError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Content-Encoding ${JSON.stringify(value)} is not supported (use gzip or none)`,
  );
}
