import type { UploadStorage } from '../../server/index.js';

/**
 * Wraps a real storage and, while `failWrites` is set, makes every blob write fail with that
 * errno after passing `bytesBeforeFailure` bytes through, like a disk that fills up mid-chunk.
 * It simulates the condition (the real disk is not filled); everything else is forwarded.
 */
export class FaultyStorage implements UploadStorage {
  readonly #inner: UploadStorage;
  failWrites: 'ENOSPC' | 'EIO' | undefined;
  bytesBeforeFailure = 1000;

  constructor(inner: UploadStorage) {
    this.#inner = inner;
  }

  get root(): string {
    return this.#inner.root;
  }

  writeAt(sessionId: string, name: string, offset: number, source: AsyncIterable<Uint8Array>): Promise<number> {
    const code = this.failWrites;
    if (!code) return this.#inner.writeAt(sessionId, name, offset, source);
    const limit = this.bytesBeforeFailure;
    async function* failing(): AsyncIterable<Uint8Array> {
      let passed = 0;
      for await (const piece of source) {
        if (passed + piece.byteLength > limit) {
          throw Object.assign(new Error(`${code}: simulated failure, write`), { code, errno: code === 'ENOSPC' ? -28 : -5, syscall: 'write' });
        }
        passed += piece.byteLength;
        yield piece;
      }
    }
    return this.#inner.writeAt(sessionId, name, offset, failing());
  }

  createSession = (id: string): Promise<void> => this.#inner.createSession(id);
  removeSession = (id: string): Promise<void> => this.#inner.removeSession(id);
  listSessions = (): Promise<string[]> => this.#inner.listSessions();
  readAt = (id: string, name: string, offset: number, length: number): AsyncIterable<Buffer> => this.#inner.readAt(id, name, offset, length);
  blobSize = (id: string, name: string): Promise<number | undefined> => this.#inner.blobSize(id, name);
  truncate = (id: string, name: string, length: number): Promise<void> => this.#inner.truncate(id, name, length);
  flush = (id: string, name: string): Promise<void> => this.#inner.flush(id, name);
  renameBlob = (id: string, from: string, to: string, toSession?: string): Promise<void> => this.#inner.renameBlob(id, from, to, toSession);
  removeBlob = (id: string, name: string): Promise<void> => this.#inner.removeBlob(id, name);
  listBlobs = (id: string): Promise<string[]> => this.#inner.listBlobs(id);
  commit = (id: string, name: string, uploader: string, relativePath: string, options: { replace: boolean }): Promise<void> => this.#inner.commit(id, name, uploader, relativePath, options);
  completedSize = (uploader: string, relativePath: string): Promise<number | undefined> => this.#inner.completedSize(uploader, relativePath);
  readCompleted = (uploader: string, relativePath: string): AsyncIterable<Buffer> => this.#inner.readCompleted(uploader, relativePath);
  completedLocation = (uploader: string, relativePath: string): string => this.#inner.completedLocation(uploader, relativePath);
  writeCompressed = (uploader: string, relativePath: string, source: AsyncIterable<Uint8Array>, keep: (size: number) => boolean): Promise<number | undefined> =>
    this.#inner.writeCompressed(uploader, relativePath, source, keep);
  removeCompressed = (uploader: string, relativePath: string): Promise<void> => this.#inner.removeCompressed(uploader, relativePath);
  compressedLocation = (uploader: string, relativePath: string): string => this.#inner.compressedLocation(uploader, relativePath);
  freeSpace = (): Promise<number> => this.#inner.freeSpace();
}
