import { createHash } from 'node:crypto';

/**
 * Stable event ids: derived from what the event is about, so the same event gets the same id
 * however often it is derived (a retry, a restart that announces a file again). A webhook
 * receiver deduplicates on it. 32 hex digits (128 bits of SHA-256).
 */
export function eventId(kind: string, ...parts: (string | number)[]): string {
  const hash = createHash('sha256').update(kind);
  for (const part of parts) hash.update('\0').update(String(part));
  return hash.digest('hex').slice(0, 32);
}
