import type { PartPlace, SpoolRef, StoredFile, StoredFileInfo, UploadStorage } from '../../server/index.js';

/**
 * Wraps a real storage and, while `failWrites` is set, makes every write of upload bytes (parts
 * and spools) fail with that errno after passing `bytesBeforeFailure` bytes through, like a
 * disk that fills up mid-chunk. It simulates the condition (the real disk is not filled);
 * everything else is forwarded.
 */
export class FaultyStorage implements UploadStorage {
  readonly #inner: UploadStorage & { freeSpace(): Promise<number> };
  failWrites: 'ENOSPC' | 'EIO' | undefined;
  bytesBeforeFailure = 1000;

  constructor(inner: UploadStorage & { freeSpace(): Promise<number> }) {
    this.#inner = inner;
  }

  get root(): string {
    return this.#inner.root;
  }

  writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number> {
    return this.#inner.writePart(id, part, this.#faulty(body));
  }

  writeSpool(spool: SpoolRef, body: AsyncIterable<Uint8Array>, length?: number): Promise<number> {
    return this.#inner.writeSpool(spool, this.#faulty(body), length);
  }

  /** The body as it is, or one that fails after `bytesBeforeFailure` bytes while `failWrites` is set. */
  #faulty(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const code = this.failWrites;
    if (!code) return body;
    const limit = this.bytesBeforeFailure;
    return (async function* failing(): AsyncIterable<Uint8Array> {
      let passed = 0;
      for await (const piece of body) {
        if (passed + piece.byteLength > limit) {
          throw Object.assign(new Error(`${code}: simulated failure, write`), {
            code,
            errno: code === 'ENOSPC' ? -28 : -5,
            syscall: 'write',
          });
        }
        passed += piece.byteLength;
        yield piece;
      }
    })();
  }

  createStaging = (id: string, options?: Parameters<UploadStorage['createStaging']>[1]): Promise<void> =>
    this.#inner.createStaging(id, options);
  readStaged = (id: string, offset: number, length: number): AsyncIterable<Buffer> =>
    this.#inner.readStaged(id, offset, length);
  hasStaging = (id: string): Promise<boolean> => this.#inner.hasStaging(id);
  commit = (id: string, file: StoredFile, options: { size: number; replace: boolean }): Promise<void> =>
    this.#inner.commit(id, file, options);
  abortStaging = (id: string): Promise<void> => this.#inner.abortStaging(id);
  listStaging = (options?: { unchangedSince?: number }): Promise<string[]> => this.#inner.listStaging(options);
  readSpool = (spool: SpoolRef, length: number): AsyncIterable<Buffer> => this.#inner.readSpool(spool, length);
  moveSpool = (from: SpoolRef, to: SpoolRef): Promise<void> => this.#inner.moveSpool(from, to);
  removeSpool = (spool: SpoolRef): Promise<void> => this.#inner.removeSpool(spool);
  stat = (file: StoredFile): Promise<{ size: number } | undefined> => this.#inner.stat(file);
  read = (file: StoredFile): AsyncIterable<Buffer> => this.#inner.read(file);
  readRange = (file: StoredFile, offset: number, length: number): AsyncIterable<Buffer> =>
    this.#inner.readRange(file, offset, length);
  listStored = (): AsyncIterable<StoredFileInfo> => this.#inner.listStored();
  writeCompressed = (
    file: StoredFile,
    body: AsyncIterable<Uint8Array>,
    keep: (size: number) => boolean,
  ): Promise<number | undefined> => this.#inner.writeCompressed(file, body, keep);
  freeSpace = (): Promise<number> => this.#inner.freeSpace();
}
