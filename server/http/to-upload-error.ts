import { UploadError, isUploadError, isUploadErrorCode } from '../../common/errors/upload-error.js';
import { isDiskFull } from '../storage/disk-full.js';
import { codeForFrameworkStatus } from './error-status.js';

/** body-parser's error types, which name the client's mistake. */
const bodyParserMessages: Record<string, string> = {
  'entity.parse.failed': 'The request body is not valid JSON',
  'entity.too.large': 'The request body is too large',
  'request.size.invalid': 'The request body does not match its Content-Length',
  'request.aborted': 'The request body was cut short',
  'charset.unsupported': 'The request body has an unsupported charset',
  'encoding.unsupported': 'The request body has an unsupported Content-Encoding',
  'parameters.too.many': 'The request has too many parameters',
};

/**
 * Every failure as an UploadError with a code the client can act on. A full disk or quota
 * (ENOSPC, EDQUOT; the session store reports its own as INSUFFICIENT_STORAGE) becomes
 * INSUFFICIENT_STORAGE (507); a file where the path needs a folder, or the reverse, FILE_EXISTS
 * (409); errors of Express and body-parser that carry a 4xx status become
 * the matching client error with a message naming the problem; anything else is INTERNAL.
 */
export function toUploadError(error: unknown): UploadError {
  if (isUploadError(error)) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (isDiskFull(error)) {
    return new UploadError(
      'INSUFFICIENT_STORAGE',
      'The server ran out of disk space while handling this request; nothing of it was kept ' +
        '(what was acknowledged before is), retry later',
      { cause: error },
    );
  }
  if (errno === 'ENOTDIR' || errno === 'EISDIR') {
    // Storing under a client's path failed because a file stands where the path needs a folder,
    // or a folder where it needs the file: another upload took the name first (the storage checks
    // before it writes, but two uploads of crossing paths can pass the check at once).
    return new UploadError(
      'FILE_EXISTS',
      'The path conflicts with a file or folder stored on the server at the same ' +
        'time (a file where a folder is needed, or a folder where the file would go)',
      { cause: error },
    );
  }
  if (typeof errno === 'string' && isUploadErrorCode(errno)) {
    return new UploadError(errno, (error as Error).message, { cause: error });
  }
  const framework = error as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown } | undefined;
  const status = Number(framework?.status ?? framework?.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    const known = typeof framework?.type === 'string' ? bodyParserMessages[framework.type] : undefined;
    const detail = typeof framework?.message === 'string' ? framework.message : '';
    return new UploadError(
      codeForFrameworkStatus(status),
      known ? `${known}${detail ? `: ${detail}` : ''}` : detail || 'Bad request',
      { cause: error },
    );
  }
  return new UploadError('INTERNAL', 'Internal server error', { cause: error });
}
