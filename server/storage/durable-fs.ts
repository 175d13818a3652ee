/**
 * fsync of folders, shared by concurrent callers: a caller that made a change in a folder (a
 * link, a rename) waits for an fsync of it that started after its call, so its change is
 * durable; every caller that arrives while one fsync runs shares the next one. With two uploads
 * completing at once in one bag folder, that is one folder fsync instead of two. Folders are
 * named by `key` (their path); `fsync` is the caller's way to sync it (through a descriptor it
 * holds open until the returned promise settles).
 */
export class FolderSyncer {
  readonly #folders = new Map<string, { current: Promise<void>; next: Promise<void> | undefined }>();

  /** Resolves once an fsync of the folder `key` that started after this call has finished. */
  sync(key: string, fsync: () => Promise<void>): Promise<void> {
    const entry = this.#folders.get(key);
    if (!entry) return this.#start(key, fsync);
    // The running fsync may have started before the caller's change: wait for the next one.
    entry.next ??= entry.current.then(noop, noop).then(() => this.#start(key, fsync));
    return entry.next;
  }

  #start(key: string, fsync: () => Promise<void>): Promise<void> {
    const entry: { current: Promise<void>; next: Promise<void> | undefined } = {
      current: Promise.resolve(),
      next: undefined,
    };
    entry.current = fsync().finally(() => {
      if (!entry.next && this.#folders.get(key) === entry) this.#folders.delete(key);
    });
    this.#folders.set(key, entry);
    return entry.current;
  }
}

function noop(): void {}
