import path from 'node:path';
import { readReplacedFileSync, replaceFile } from '../../common/fs/replace-file.js';
import type { HeldBackFile } from '../watcher/tracked-file.js';

/**
 * The files a running `watch` holds back, for programs that cannot ask it (the `status` command
 * runs in another process and reads the state directory): `<state dir>/held-back.json`, rewritten
 * (atomically: a temporary file renamed over it) when the list changes, at most once per
 * `intervalMs`. The running agent's own status (`heldBack`, `~/queue`, `/diagnostics`) does not
 * depend on it.
 */
export const HELD_BACK_FILE = 'held-back.json';

export interface HeldBackSnapshot {
  /** ISO 8601: when the agent wrote it. */
  updatedAt: string;
  /** Oldest first; the same objects as the agent's status `heldBack`. */
  files: HeldBackFile[];
}

/** The last list a `watch` agent wrote into `stateDir`, or undefined when there is none (or it is unreadable). */
export function readHeldBack(stateDir: string): HeldBackSnapshot | undefined {
  try {
    const parsed = JSON.parse(readReplacedFileSync(path.join(stateDir, HELD_BACK_FILE))) as HeldBackSnapshot;
    return Array.isArray(parsed.files) && typeof parsed.updatedAt === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the list when it changed, checked every `intervalMs` (a few held files: the check is cheap). */
export class HeldBackWriter {
  readonly #file: string;
  readonly #list: () => HeldBackFile[];
  readonly #onError: (error: unknown) => void;
  #written: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string, list: () => HeldBackFile[], onError: (error: unknown) => void) {
    this.#file = path.join(stateDir, HELD_BACK_FILE);
    this.#list = list;
    this.#onError = onError;
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref?.();
    void this.flush();
  }

  /** Writes now if the list changed since the last write. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      const files = this.#list();
      const key = JSON.stringify(files);
      if (key === this.#written) return;
      const snapshot: HeldBackSnapshot = { updatedAt: new Date().toISOString(), files };
      try {
        await replaceFile(this.#file, `${JSON.stringify(snapshot, null, 1)}\n`);
        this.#written = key;
      } catch (error) {
        // A full state disk: the next check tries again; the live status is unaffected.
        this.#onError(error);
      }
    });
    return this.#writing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
