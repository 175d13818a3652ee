import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { MAX_SEGMENT_BYTES } from '../../common/protocol/native-protocol.js';
import { isUploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import type { SessionStore } from '../sessions/session-store.js';
import { isDiskFull } from '../storage/disk-full.js';
import { GZIP_SUFFIX } from '../storage/stored-file-layout.js';
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
 * already-compressed data it is not (the Python dashboard kept copies that grew), nor for a file whose name
 * is too long to take the `.gz` suffix.
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
    if (Buffer.byteLength(`${path.posix.basename(job.path)}${GZIP_SUFFIX}`) > MAX_SEGMENT_BYTES) {
      // A name may use all the bytes a file name can have; then `<name>.gz` cannot exist.
      this.#log.info(
        { event: 'compression_skipped', uploader: job.uploader, path: job.path },
        `No gzip copy of ${job.path}: its name leaves no room for ${GZIP_SUFFIX}`,
      );
      return undefined;
    }
    try {
      const gzip = createGzip({ level: this.#level });
      const file = { uploader: job.uploader, path: job.path };
      const feeding = pipeline(Readable.from(this.#storage.read(file)), gzip).catch(() => undefined);
      let compressedSize = 0;
      const kept = await this.#storage.writeCompressed(file, gzip, (size) => {
        compressedSize = size;
        return size < job.size;
      });
      await feeding;
      logCompression(this.#log, job.uploader, job.path, job.size, compressedSize, kept !== undefined);
      if (!this.#closed) await this.#store.setCompressedSize(job.uploader, job.path, kept ?? null);
      return kept;
    } catch (error) {
      const full = isDiskFull(error) || isUploadError(error, 'INSUFFICIENT_STORAGE');
      this.#log[full ? 'warn' : 'error'](
        { event: full ? 'storage_full' : 'compression_failed', uploader: job.uploader, path: job.path, err: error },
        full ? `No gzip copy of ${job.path}: the disk is full` : `Compressing ${job.path} failed`,
      );
      return undefined;
    }
  }
}

function logCompression(
  log: Logger,
  uploader: string,
  storedPath: string,
  size: number,
  compressedSize: number,
  kept: boolean,
): void {
  const reduction = size === 0 ? 0 : (1 - compressedSize / size) * 100;
  log.info(
    {
      event: 'compression',
      uploader,
      path: storedPath,
      size,
      compressedSize,
      reductionPercent: Number(reduction.toFixed(1)),
      kept,
    },
    kept
      ? `Compressed ${storedPath}: ${size} → ${compressedSize} bytes (${reduction.toFixed(1)}% reduction)`
      : `Not keeping the gzip copy of ${storedPath}: ${size} → ` +
          `${compressedSize} bytes (${reduction.toFixed(1)}% reduction)`,
  );
}
