import type { ByteRange } from '../uploads/read-stored-file.js';

/**
 * The one byte range a `Range` header asks for, in a file of `size` bytes (RFC 9110 §14):
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`. Undefined when there is no header, or one this server
 * ignores (several ranges, another unit, bad syntax): the whole file is sent then, as the RFC
 * allows. 'unsatisfiable' when the range starts past the end (416).
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return { start, end };
}
