import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Logger } from '../logging/logger.js';
import { logCompression } from '../logging/upload-log.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';

export interface CompressionJob {
  uploader: string;
  /** The stored relative path (under completed/<uploader>/). */
  path: string;
  size: number;
}

/**
 * Makes the gzip copies at rest, one at a time in the background (gzip runs on libuv's thread
 * pool, so the event loop stays free), streaming from the completed file to
 * `compressed/<uploader>/<path>.gz`. The copy is kept only when it is smaller: for random or
 * already-compressed data it is not (the seed kept copies that grew).
 */
export class GzipAtRest {
  readonly #storage: UploadStorage;
  readonly #store: SessionStore;
  readonly #log: Logger;
  readonly #level: number;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(storage: UploadStorage, store: SessionStore, log: Logger, level: number) {
    this.#storage = storage;
    this.#store = store;
    this.#log = log;
    this.#level = level;
  }

  /** Queues a copy; resolves with the kept copy's size, or undefined when it was not kept or failed. */
  enqueue(job: CompressionJob): Promise<number | undefined> {
    const run = this.#tail.then(() => (this.#closed ? undefined : this.#compress(job)));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Waits for queued copies to finish; no new ones start. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }

  async #compress(job: CompressionJob): Promise<number | undefined> {
    try {
      const gzip = createGzip({ level: this.#level });
      const feeding = pipeline(Readable.from(this.#storage.readCompleted(job.uploader, job.path)), gzip).catch(() => undefined);
      let compressedSize = 0;
      const kept = await this.#storage.writeCompressed(job.uploader, job.path, gzip, (size) => {
        compressedSize = size;
        return size < job.size;
      });
      await feeding;
      logCompression(this.#log, job.uploader, job.path, job.size, compressedSize, kept !== undefined);
      if (!this.#closed) this.#store.setCompressedSize(job.uploader, job.path, kept ?? null);
      return kept;
    } catch (error) {
      this.#log.error({ event: 'compression_failed', uploader: job.uploader, path: job.path, err: error }, `Compressing ${job.path} failed`);
      return undefined;
    }
  }
}
