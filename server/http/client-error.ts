import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { httpStatusOf } from './error-status.js';
import { errorBody } from './send-error.js';

/**
 * Requests Node's HTTP parser rejects before Express sees them (malformed request line or
 * headers, a bad Content-Length, headers too large, a request or header timeout) get the same
 * JSON error body as everything else, then the connection is closed.
 */
export function handleClientError(
  log: Logger,
): (error: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const timeout = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    const uploadError = timeout
      ? new UploadError('TIMEOUT', "The request took too long (see the server's headersTimeout/requestTimeout)")
      : new UploadError('BAD_REQUEST', `Malformed HTTP request: ${parseProblem(error)}`);
    const status = httpStatusOf(uploadError.code);
    log.debug({ event: 'client_error', code: error.code, status }, uploadError.message);
    const body = JSON.stringify(errorBody(uploadError));
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  };
}

/** What the parser refused, in one line. */
function parseProblem(error: NodeJS.ErrnoException): string {
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'headers too large';
  return (error.message || 'parse error').replace(/\s+/g, ' ');
}
