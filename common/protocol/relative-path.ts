import { UploadError } from '../errors/upload-error.js';
import { MAX_PATH_BYTES, MAX_SEGMENT_BYTES } from './native-protocol.js';

/**
 * Validates and normalises a client-supplied relative path (Unicode NFC, `/` separators).
 * Refused with INVALID_PATH and a message naming the problem: empty, absolute, `..` or `.`
 * segments, NUL or other control characters, unpaired surrogates, backslashes, Windows drive
 * letters, over-long paths or segments. The server additionally refuses paths that would leave
 * the storage root through a symlink (server/storage/).
 */
export function normaliseRelativePath(input: unknown, field = 'path'): string {
  if (typeof input !== 'string') throw invalid(`${field} must be a string`);
  const value = input.normalize('NFC');
  if (value.length === 0) throw invalid(`${field} must not be empty`);
  if (value.includes('\0')) throw invalid(`${field} must not contain a NUL byte`);
  // An unpaired surrogate is not text: it would be stored as U+FFFD, so two different paths
  // could name one file, and the path answered could not be sent back (it has no UTF-8 form).
  if (/[\uD800-\uDFFF]/u.test(value))
    throw invalid(`${field} is not valid Unicode (it contains an unpaired surrogate)`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this check is for
  if (/[\u0001-\u001f\u007f]/.test(value)) throw invalid(`${field} must not contain control characters`);
  if (value.includes('\\')) throw invalid(`${field} must not contain a backslash`);
  if (value.startsWith('/')) throw invalid(`${field} must be relative, not absolute: ${JSON.stringify(value)}`);
  if (/^[a-zA-Z]:/.test(value)) throw invalid(`${field} must be relative, not a drive path: ${JSON.stringify(value)}`);
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) throw invalid(`${field} is longer than ${MAX_PATH_BYTES} bytes`);
  const segments = value.split('/').filter((segment) => segment !== '');
  if (segments.length === 0) throw invalid(`${field} must name a file`);
  for (const segment of segments) {
    if (segment === '..') throw invalid(`${field} must not contain "..": ${JSON.stringify(value)}`);
    if (segment === '.') throw invalid(`${field} must not contain "." segments: ${JSON.stringify(value)}`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)
      throw invalid(`${field} has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return segments.join('/');
}

function invalid(message: string): UploadError {
  return new UploadError('INVALID_PATH', message);
}
