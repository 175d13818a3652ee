import type { UploadStorage, SpoolRef } from '../storage/upload-storage.js';
import type { SessionRecord } from '../sessions/session-record.js';

/**
 * Where a chunk waits until it can be placed in the staged file: spool `chunk-<index>` of its
 * session. The legacy API's chunks wait there until the chunks before them arrived (their
 * offset is known only then); a native chunk only when it arrived before the chunks ahead of
 * it were hashed, on a backend whose chunks cannot be read back (S3's multipart parts).
 */
export function chunkSpool(sessionId: string, index: number): SpoolRef {
  return { staging: sessionId, name: `chunk-${index}` };
}

/** Whether the session's chunks, once written to the staged file, can be read back (for hashing or re-checking). */
export function stagedChunksReadable(storage: UploadStorage, record: SessionRecord): boolean {
  return record.api !== 'native' || storage.chunkedStaging === undefined;
}
