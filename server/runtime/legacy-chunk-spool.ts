import type { SpoolRef } from '../storage/upload-storage.js';

/** Where a legacy chunk waits for the chunks before it: spool `chunk-<index>` of its session. */
export function legacyChunkSpool(sessionId: string, index: number): SpoolRef {
  return { staging: sessionId, name: `chunk-${index}` };
}
