import type { Stats } from 'node:fs';
import { rmdir, statfs, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { UploadLedger } from './upload-ledger.js';

/** Free bytes for an unprivileged user on the volume holding `dir`. */
export async function freeSpaceOf(dir: string): Promise<number> {
  const info = await statfs(dir);
  return info.bavail * info.bsize;
}

export interface DiskGuardOptions {
  /** The recording root (the guarded volume, and the only place files are deleted from). */
  root: string;
  minFreeSpace: number;
  deleteUploadedWhenLow: boolean;
  ledger: UploadLedger;
  /** Injectable for tests; defaults to statfs. */
  freeSpace?: (dir: string) => Promise<number>;
  /** Called for every file the guard deleted (so the watcher forgets it). */
  onDeleted?: (filePath: string) => void;
  logger?: Logger;
}

export interface DiskState {
  /** Free bytes, or undefined when unknown. */
  free: number | undefined;
  low: boolean;
}

/**
 * Watches free space on the recording disk. Below `minFreeSpace` it reports `low` (the status
 * warns). With `deleteUploadedWhenLow` it frees space by deleting files the server verified,
 * oldest recording first, until the threshold is met again. It only ever deletes a file whose
 * current size and mtime are exactly those of a verified upload, so data that was not uploaded
 * (or changed since) is never touched. A bag folder emptied this way goes too.
 */
export class DiskGuard {
  #options: DiskGuardOptions;
  #state: DiskState = { free: undefined, low: false };
  #running: Promise<DiskState> | undefined;

  constructor(options: DiskGuardOptions) {
    this.#options = options;
  }

  get state(): DiskState {
    return this.#state;
  }

  setOptions(options: Partial<Pick<DiskGuardOptions, 'minFreeSpace' | 'deleteUploadedWhenLow'>>): void {
    this.#options = { ...this.#options, ...options };
  }

  /** Measures, and frees space if allowed and needed. Concurrent calls share one run. */
  check(): Promise<DiskState> {
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #check(): Promise<DiskState> {
    const { root, minFreeSpace, deleteUploadedWhenLow, ledger, logger } = this.#options;
    const measure = this.#options.freeSpace ?? freeSpaceOf;
    let free: number | undefined;
    try {
      free = await measure(root);
    } catch (error) {
      logger?.warn({ err: error, root }, 'cannot measure free disk space');
      this.#state = { free: undefined, low: false };
      return this.#state;
    }
    if (minFreeSpace > 0 && free < minFreeSpace && deleteUploadedWhenLow) {
      const rootPrefix = path.resolve(root) + path.sep;
      for (const entry of ledger.oldestFirst()) {
        if (free >= minFreeSpace) break;
        if (!entry.localPath.startsWith(rootPrefix)) continue;
        let current: Stats;
        try {
          current = await stat(entry.localPath);
        } catch {
          continue;
        }
        if (!current.isFile() || current.size !== entry.size || current.mtimeMs !== entry.mtimeMs) continue;
        try {
          await unlink(entry.localPath);
        } catch (error) {
          logger?.warn({ err: error, file: entry.localPath }, 'disk guard could not delete an uploaded file');
          continue;
        }
        logger?.warn(
          { file: entry.localPath, size: entry.size, free, minFreeSpace },
          'low disk: deleted an already uploaded file',
        );
        this.#options.onDeleted?.(entry.localPath);
        await removeEmptiedFolder(entry.localPath, root);
        free = await measure(root);
      }
    }
    this.#state = { free, low: minFreeSpace > 0 && free < minFreeSpace };
    return this.#state;
  }
}

/**
 * Removes the folder of a file the guard deleted if nothing is left in it. A folder being
 * recorded into is never empty (rosbag2 opens split n + 1 before it closes split n, and the open
 * split was never uploaded, so never deleted); a folder that still holds anything stays.
 */
async function removeEmptiedFolder(deleted: string, root: string): Promise<void> {
  const folder = path.dirname(deleted);
  if (path.resolve(folder) === path.resolve(root)) return;
  await rmdir(folder).catch(() => undefined);
}
