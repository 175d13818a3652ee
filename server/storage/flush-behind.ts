import type { FileHandle } from 'node:fs/promises';

/**
 * A staged file is flushed (fdatasync) in the background each time this much more was written
 * to it, so that the fsync at commit only has the tail left to write: completing 1 GiB stays
 * fast even on slow disks.
 */
export const FLUSH_EVERY = 64 * 1024 * 1024;

interface StagedFileFlush {
  unflushed: number;
  running: Promise<void> | undefined;
  error: unknown;
}

/**
 * The background flushes of staged files, per staging upload: at most one at a time each. A
 * flush that failed (EIO) fails the commit that follows, instead of being hidden by a later
 * fsync that may report success for pages the kernel already dropped.
 */
export class FlushBehind {
  readonly #files = new Map<string, StagedFileFlush>();

  /** Counts `bytes` written to the staged file that `open` opens; starts a flush once FLUSH_EVERY accumulated. */
  wrote(id: string, open: () => Promise<FileHandle>, bytes: number): void {
    let state = this.#files.get(id);
    if (!state) {
      state = { unflushed: 0, running: undefined, error: undefined };
      this.#files.set(id, state);
    }
    state.unflushed += bytes;
    if (state.unflushed < FLUSH_EVERY || state.running) return;
    state.unflushed = 0;
    const flushing = state;
    flushing.running = datasync(open)
      .catch((error: unknown) => {
        flushing.error ??= error;
      })
      .finally(() => {
        flushing.running = undefined;
      });
  }

  /** Waits for the flush in progress and forgets the file; rejects with a flush's error. */
  async settle(id: string): Promise<void> {
    const state = this.#files.get(id);
    if (!state) return;
    await state.running;
    this.#files.delete(id);
    if (state.error !== undefined) throw state.error;
  }

  forget(id: string): void {
    this.#files.delete(id);
  }
}

async function datasync(open: () => Promise<FileHandle>): Promise<void> {
  const handle = await open();
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
