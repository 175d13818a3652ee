import type { GzipAtRest } from '../compression/gzip-at-rest.js';
import type { Logger } from '../logging/logger.js';
import type { ServerConfig } from '../server-options.js';
import type { KeyedMutex } from '../sessions/mutex.js';
import type { RuntimeRegistry } from '../sessions/runtime-registry.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import type { FreeSpaceGauge } from './free-space-gauge.js';

/** What every upload operation works with; built once by createUploadServer. */
export interface UploadContext {
  readonly config: ServerConfig;
  readonly store: SessionStore;
  readonly storage: UploadStorage;
  readonly runtimes: RuntimeRegistry;
  readonly gzip: GzipAtRest;
  /** The free space for admission checks (see disk-space.ts). */
  readonly freeSpace: FreeSpaceGauge;
  /** Serialises creating sessions per uploader and path, so concurrent creates resume one session. */
  readonly pathLocks: KeyedMutex;
  readonly log: Logger;
}

/** The name of the `data` blob every session assembles its file in. */
export const DATA_BLOB = 'data';

/**
 * The temp area of whole-file uploads (PUT /v1/files): one blob per upload, named by a random
 * id, in one shared folder (no folder to create and delete per request). It belongs to no
 * session, so the startup sweep deletes whatever a crash left in it.
 */
export const WHOLE_FILE_AREA = 'files';

/** The blob of one legacy chunk, before it is appended to `data`. */
export function legacyChunkBlob(index: number): string {
  return `chunk-${index}`;
}
