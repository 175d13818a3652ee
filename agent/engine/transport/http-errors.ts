import { UploadError, isWireErrorCode } from '../../../common/errors/upload-error.js';
import { tlsCertificateError, type TlsContext } from './tls-errors.js';

/**
 * Turns what the network and the server say into UploadErrors with stable codes. The details
 * carry what the retry policy needs: the HTTP `status`, the server's `serverCode`,
 * `retryAfter` (seconds) and `missing` chunk indexes.
 */
export interface HttpErrorDetails {
  status?: number;
  serverCode?: string;
  retryAfter?: number;
  missing?: number[];
  /** The system or undici error code of a network failure. */
  errno?: string;
}

export function errorDetails(error: unknown): HttpErrorDetails {
  return (error instanceof UploadError ? (error.details as HttpErrorDetails | undefined) : undefined) ?? {};
}

/** An HTTP error answer. `what` names the file and the step ("run1/a.mcap: chunk 3"). */
export function httpStatusError(
  what: string,
  status: number,
  body: unknown,
  retryAfterHeader: string | string[] | undefined,
): UploadError {
  const parsed = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const serverMessage =
    typeof parsed.error === 'string'
      ? parsed.error
      : typeof body === 'string' && body.trim()
        ? body.trim().slice(0, 300)
        : `HTTP ${status}`;
  const serverCode = typeof parsed.code === 'string' ? parsed.code : undefined;
  // Only a code of the wire contract is taken as the server's; any other is kept as serverCode.
  const code = isWireErrorCode(serverCode)
    ? serverCode
    : status === 429
      ? 'RATE_LIMITED'
      : status === 503
        ? 'SERVER_UNAVAILABLE'
        : 'HTTP_STATUS';
  const details: HttpErrorDetails = { status };
  if (serverCode) details.serverCode = serverCode;
  const retryAfter =
    parseRetryAfter(retryAfterHeader) ?? (typeof parsed.retryAfter === 'number' ? parsed.retryAfter : undefined);
  if (retryAfter !== undefined) details.retryAfter = retryAfter;
  if (Array.isArray(parsed.missing) && parsed.missing.every((n) => Number.isInteger(n)))
    details.missing = parsed.missing as number[];
  return new UploadError(
    code,
    `${what}: the server answered ${status}${serverCode ? ` ${serverCode}` : ''}: ${serverMessage}`,
    { details: { ...details } },
  );
}

/** `Retry-After` as seconds: a number of seconds or an HTTP date. */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

const networkReasons: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EAI_AGAIN: 'name resolution failed (temporary)',
  ENOTFOUND: 'host name not found',
  UND_ERR_SOCKET: 'connection closed by the other side',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_CLOSED: 'connection closed',
  UND_ERR_DESTROYED: 'connection destroyed',
};

/**
 * A failure below HTTP (refused, reset, TLS, timeouts): NETWORK, naming the step and the reason;
 * or, with the transport's TLS set-up given, TLS_CERTIFICATE for a certificate that
 * configuration has to fix (tls-errors.ts).
 */
export function networkError(what: string, cause: unknown, tls?: TlsContext): UploadError {
  const errno = findCode(cause);
  const certificate = tls ? tlsCertificateError(what, errno, cause, tls) : undefined;
  if (certificate) return certificate;
  const message = cause instanceof Error ? cause.message : String(cause);
  const tlsFailure = errno !== undefined && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/i.test(errno);
  const reason = tlsFailure
    ? `TLS failure: ${message}`
    : errno && networkReasons[errno]
      ? `${networkReasons[errno]} (${errno})`
      : message;
  const details: HttpErrorDetails = errno ? { errno } : {};
  return new UploadError('NETWORK', `${what}: ${reason}`, { cause, details: { ...details } });
}

function findCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
