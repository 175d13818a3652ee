import type { GzipAtRest } from '../compression/gzip-at-rest.js';
import type { ServerConfig } from '../config/server-options.js';
import type { UploadEventBus } from '../events/upload-events.js';
import type { Logger } from '../logging/logger.js';
import type { KeyedLock } from '../runtime/mutex.js';
import type { SessionRuntimes } from '../runtime/runtime-registry.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import type { FreeSpaceGauge } from './free-space-gauge.js';
import type { InFlightBudget } from './in-flight-budget.js';

/** What every upload operation works with; built once by the composition root (upload-handler.ts). */
export interface UploadContext {
  readonly config: ServerConfig;
  readonly store: SessionStore;
  readonly storage: UploadStorage;
  readonly runtimes: SessionRuntimes;
  readonly gzip: GzipAtRest;
  /** The free space for admission checks (see disk-space.ts). */
  readonly freeSpace: FreeSpaceGauge;
  /**
   * Serialises creating sessions and committing files per uploader and path, so concurrent
   * creates resume one session and a commit never overwrites what another just stored: in
   * memory for one process, PostgreSQL advisory locks for server replicas.
   */
  readonly pathLocks: KeyedLock;
  /** Bytes of upload bodies each uploader is sending (maxBytesInFlight). */
  readonly inFlight: InFlightBudget;
  readonly events: UploadEventBus;
  readonly log: Logger;
}
