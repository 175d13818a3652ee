import path from 'node:path';
import { BAG_METADATA, MAX_METADATA_BYTES, bagFolderOf, folderOf, parseBagMetadata } from '../bags/bag-metadata.js';
import type { UploadEventBus } from '../events/upload-events.js';
import type { Logger } from '../logging/logger.js';
import type { BagRecord, FileToAnnounce, WebhookDelivery } from '../sessions/fleet-records.js';
import type { FileRecord } from '../sessions/session-record.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import { bagCompletedData, bagDelivery, bagEventId, fileDelivery } from './webhook-bodies.js';

export interface BagTrackerOptions {
  store: SessionStore;
  storage: UploadStorage;
  events: UploadEventBus;
  log: Logger;
  /** Which webhooks are configured: only those get deliveries queued. */
  hooks: { file: boolean; bag: boolean };
  /** Called after deliveries were queued (the deliverer wakes up). */
  onDeliveries: () => void;
}

/** Files announced per store query. */
const BATCH = 100;
/** After a failure (the store or storage unavailable), the next attempt. */
const RETRY_MS = 5000;

/**
 * Announces stored files: keeps each bag folder's record (what its metadata.yaml lists against
 * what is verified), queues the webhook deliveries of new files and of bags that became
 * complete, and emits `bag-updated` and `bag-completed`.
 *
 * It works from the store, not from the events: every file recorded with new content is
 * pending announcement in the store until `announce` records its outcome in one transaction
 * (the bag record, the deliveries, the file no longer pending). A `file-completed` event only
 * wakes it up, and at start it catches up with whatever a crash or a stop left pending, so
 * nothing is announced twice and nothing is lost. One drain runs at a time.
 */
export class BagTracker {
  readonly #o: BagTrackerOptions;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(options: BagTrackerOptions) {
    this.#o = options;
    options.events.on('file-completed', (event) => {
      if (!event.deduplicated) this.kick();
    });
  }

  /** Announces whatever is pending (call once at start; file completions call it too). */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Resolves once nothing is being announced (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.idle();
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const batch = await this.#o.store.fleet.filesToAnnounce(BATCH);
        for (const file of batch) {
          if (this.#closed) return;
          await this.#announce(file);
        }
        if (batch.length < BATCH) return;
      }
    } catch (error) {
      this.#o.log.error({ event: 'announce_failed', err: error }, 'Could not update the bag view; retrying');
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => this.kick(), RETRY_MS);
      this.#retry.unref();
    }
  }

  async #announce(file: FileToAnnounce): Promise<void> {
    const { store, log } = this.#o;
    const now = Date.now();
    const folder = folderOf(file.path);
    let before: BagRecord | undefined;
    let bag: BagRecord | undefined;
    let bagFiles: FileRecord[] = [];
    if (folder !== undefined) {
      before = await store.fleet.getBag(file.uploader, folder);
      if (before || bagFolderOf(file.path) !== undefined) {
        bagFiles = await store.fleet.filesIn(file.uploader, folder);
        bag = await this.#evaluate(file.uploader, folder, before, bagFiles, now);
      }
    }
    const becameComplete = bag?.complete && bag.eventId !== before?.eventId;
    const deliveries: WebhookDelivery[] = [];
    if (file.hooks && this.#o.hooks.file) deliveries.push(fileDelivery(file, bag?.folder, now));
    const completed = becameComplete && bag ? bagCompletedData(bag, bagFiles) : undefined;
    if (completed && bag?.eventId && file.hooks && this.#o.hooks.bag) {
      deliveries.push(bagDelivery(bag.eventId, completed, now));
    }
    const recorded = await store.fleet.announce({
      file: { uploader: file.uploader, path: file.path, sha256: file.sha256 },
      bag,
      deliveries,
    });
    if (!recorded) return;
    if (deliveries.length > 0) this.#o.onDeliveries();
    if (!bag) return;
    this.#o.events.emit('bag-updated', { uploader: bag.uploader, bag: bag.folder, complete: bag.complete });
    if (!completed || !bag.eventId || !file.hooks) return;
    log.info(
      {
        event: 'bag_complete',
        eventId: bag.eventId,
        uploader: bag.uploader,
        bag: bag.folder,
        files: completed.files.length,
        bytes: bag.bytes,
      },
      `Bag ${bag.folder} of ${bag.uploader} is complete: ${completed.files.length} files verified`,
    );
    this.#o.events.emit('bag-completed', { eventId: bag.eventId, ...completed });
  }

  /** The bag record of `folder` as its stored files make it now. */
  async #evaluate(
    uploader: string,
    folder: string,
    before: BagRecord | undefined,
    files: readonly FileRecord[],
    now: number,
  ): Promise<BagRecord> {
    const metadata = files.find((file) => path.posix.basename(file.path) === BAG_METADATA);
    let expected = before?.expected ?? null;
    let metadataError = before?.metadataError ?? null;
    let storageIdentifier = before?.storageIdentifier ?? null;
    if (!metadata) {
      expected = null;
      metadataError = null;
      storageIdentifier = null;
    } else if (metadata.sha256 !== before?.metadataSha256) {
      try {
        const manifest = parseBagMetadata(await this.#readMetadata(metadata));
        expected = manifest.files;
        storageIdentifier = manifest.storageIdentifier;
        metadataError = null;
      } catch (error) {
        expected = null;
        storageIdentifier = null;
        metadataError = (error as Error).message;
        this.#o.log.warn(
          { event: 'bag_metadata_unreadable', uploader, bag: folder, reason: metadataError },
          `The metadata.yaml of ${folder} (${uploader}) cannot be read: ${metadataError}`,
        );
      }
    }
    const names = new Set(files.map((file) => path.posix.basename(file.path)));
    const missing = expected ? expected.filter((name) => !names.has(name)) : [];
    const complete = metadata !== undefined && expected !== null && missing.length === 0;
    const eventId = complete && metadata ? bagEventId(uploader, folder, metadata.sha256) : null;
    return {
      uploader,
      folder,
      metadataSha256: metadata?.sha256 ?? null,
      expected,
      metadataError,
      storageIdentifier,
      missing,
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.size, 0),
      complete,
      completedAt: complete ? (before?.complete && before.eventId === eventId ? before.completedAt : now) : null,
      eventId,
      firstAt: before?.firstAt ?? now,
      updatedAt: now,
    };
  }

  async #readMetadata(file: FileRecord): Promise<string> {
    if (file.size > MAX_METADATA_BYTES) {
      throw new Error(`metadata.yaml is ${file.size} bytes, more than the ${MAX_METADATA_BYTES} read`);
    }
    const pieces: Buffer[] = [];
    let length = 0;
    for await (const piece of this.#o.storage.read({ uploader: file.uploader, path: file.path })) {
      length += piece.length;
      if (length > MAX_METADATA_BYTES) throw new Error(`metadata.yaml is more than ${MAX_METADATA_BYTES} bytes`);
      pieces.push(piece);
    }
    return Buffer.concat(pieces).toString('utf8');
  }
}
