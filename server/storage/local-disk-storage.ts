import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, statfs, truncate, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { writeBatched } from './batched-writer.js';
import { FolderSyncer, fsyncDir, fsyncFile } from './durable-fs.js';
import { realRoot, SafePathResolver } from './safe-path.js';
import type { UploadStorage } from './upload-storage.js';

const READ_PIECE = 1024 * 1024;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The storage on a local file system, laid out as the Python dashboard's was:
 * `temp/<session>/<blob>`, `completed/<uploader>/<path>`, `compressed/<uploader>/<path>.gz`.
 */
export class LocalDiskStorage implements UploadStorage {
  readonly root: string;
  readonly #temp: string;
  readonly #completed: SafePathResolver;
  readonly #compressed: SafePathResolver;
  /** Blobs written with `sync` and not changed since: commit need not open them again to fsync. */
  readonly #synced = new Set<string>();
  readonly #folderSyncer = new FolderSyncer();

  private constructor(root: string, temp: string, completed: string, compressed: string) {
    this.root = root;
    this.#temp = temp;
    this.#completed = new SafePathResolver(completed);
    this.#compressed = new SafePathResolver(compressed);
  }

  /** Creates the folders when needed (the root may itself be a symlink, e.g. to a data volume). */
  static async open(root: string): Promise<LocalDiskStorage> {
    const real = await realRoot(root);
    const [temp, completed, compressed] = await Promise.all(['temp', 'completed', 'compressed'].map((name) => realRoot(path.join(real, name))));
    return new LocalDiskStorage(real, temp!, completed!, compressed!);
  }

  async createSession(sessionId: string): Promise<void> {
    const folder = this.#sessionDir(sessionId);
    await mkdir(folder, { recursive: true });
    const handle = await open(path.join(folder, 'data'), 'w');
    await handle.close();
  }

  async removeSession(sessionId: string): Promise<void> {
    const folder = this.#sessionDir(sessionId);
    for (const file of this.#synced) if (path.dirname(file) === folder) this.#synced.delete(file);
    await rm(folder, { recursive: true, force: true });
  }

  async listSessions(): Promise<string[]> {
    // Every entry: session folders, `incoming/`, and gzip copies left by a crash (compress-*.gz).
    return (await readdir(this.#temp)).filter((name) => SAFE_NAME.test(name));
  }

  async writeAt(sessionId: string, name: string, offset: number, source: AsyncIterable<Uint8Array>, options: { sync?: boolean; existing?: boolean } = {}): Promise<number> {
    const file = this.#blob(sessionId, name);
    this.#synced.delete(file);
    let handle: FileHandle;
    try {
      handle = await open(file, options.existing ? constants.O_WRONLY : constants.O_WRONLY | constants.O_CREAT);
    } catch (error) {
      // The folder is created on first use only (one call less per request otherwise).
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || options.existing) throw error;
      await mkdir(path.dirname(file), { recursive: true });
      handle = await open(file, constants.O_WRONLY | constants.O_CREAT);
    }
    try {
      const written = await writeBatched(handle, offset, source);
      if (options.sync) {
        await handle.sync();
        this.#synced.add(file);
      }
      return written;
    } finally {
      await handle.close();
    }
  }

  async *readAt(sessionId: string, name: string, offset: number, length: number): AsyncIterable<Buffer> {
    yield* readRange(this.#blob(sessionId, name), offset, length);
  }

  async blobSize(sessionId: string, name: string): Promise<number | undefined> {
    try {
      return (await stat(this.#blob(sessionId, name))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async truncate(sessionId: string, name: string, length: number): Promise<void> {
    const file = this.#blob(sessionId, name);
    this.#synced.delete(file);
    await truncate(file, length);
  }

  async flush(sessionId: string, name: string): Promise<void> {
    const handle = await open(this.#blob(sessionId, name), 'r');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async renameBlob(sessionId: string, from: string, to: string, toSession = sessionId): Promise<void> {
    await mkdir(this.#sessionDir(toSession), { recursive: true });
    const source = this.#blob(sessionId, from);
    const target = this.#blob(toSession, to);
    this.#synced.delete(target);
    if (this.#synced.delete(source)) this.#synced.add(target);
    await rename(source, target);
  }

  async removeBlob(sessionId: string, name: string): Promise<void> {
    const file = this.#blob(sessionId, name);
    this.#synced.delete(file);
    await unlink(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async listBlobs(sessionId: string): Promise<string[]> {
    try {
      return await readdir(this.#sessionDir(sessionId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  async commit(sessionId: string, name: string, uploader: string, relativePath: string, options: { replace: boolean }): Promise<void> {
    const source = this.#blob(sessionId, name);
    // A blob written with `sync` is already on disk (and unchanged since: every change forgets it).
    if (!this.#synced.delete(source)) await fsyncFile(source);
    const target = await this.#completed.resolve(segmentsOf(uploader, relativePath), { createParents: true });
    if (options.replace) {
      await rename(source, target.absolute);
    } else {
      // link() never replaces an existing file, atomically; the temp name is removed afterwards.
      try {
        await link(source, target.absolute);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new UploadError('FILE_EXISTS', `${relativePath} is already stored`, { cause: error });
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw error;
        // No hard links on this file system: check, then rename (a small race, only here).
        if (await exists(target.absolute)) throw new UploadError('FILE_EXISTS', `${relativePath} is already stored`, { cause: error });
        await rename(source, target.absolute);
      }
      await unlink(source).catch(() => undefined);
    }
    // A folder created for this file is durable only once its own parent is synced too.
    for (const folder of target.created) await this.#folderSyncer.sync(path.dirname(folder));
    await this.#folderSyncer.sync(path.dirname(target.absolute));
  }

  async completedSize(uploader: string, relativePath: string): Promise<number | undefined> {
    return (await this.#completed.resolve(segmentsOf(uploader, relativePath), { createParents: false })).size;
  }

  async *readCompleted(uploader: string, relativePath: string): AsyncIterable<Buffer> {
    const target = await this.#completed.resolve(segmentsOf(uploader, relativePath), { createParents: false });
    const size = (await stat(target.absolute)).size;
    yield* readRange(target.absolute, 0, size);
  }

  completedLocation(uploader: string, relativePath: string): string {
    return ['completed', uploader, relativePath].join('/');
  }

  async writeCompressed(uploader: string, relativePath: string, source: AsyncIterable<Uint8Array>, keep: (size: number) => boolean): Promise<number | undefined> {
    const temp = path.join(this.#temp, `compress-${randomUUID()}.gz`);
    try {
      const handle = await open(temp, 'w');
      let size = 0;
      try {
        for await (const piece of source) {
          await handle.write(piece, 0, piece.byteLength, size);
          size += piece.byteLength;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (!keep(size)) return undefined;
      const segments = segmentsOf(uploader, relativePath);
      segments[segments.length - 1] += '.gz';
      const target = await this.#compressed.resolve(segments, { createParents: true });
      await rename(temp, target.absolute);
      await fsyncDir(path.dirname(target.absolute));
      return size;
    } finally {
      await rm(temp, { force: true });
    }
  }

  async removeCompressed(uploader: string, relativePath: string): Promise<void> {
    const segments = segmentsOf(uploader, relativePath);
    segments[segments.length - 1] += '.gz';
    const target = await this.#compressed.resolve(segments, { createParents: false });
    if (target.exists) await rm(target.absolute, { force: true });
  }

  compressedLocation(uploader: string, relativePath: string): string {
    return ['compressed', uploader, `${relativePath}.gz`].join('/');
  }

  async freeSpace(): Promise<number> {
    const info = await statfs(this.root);
    return info.bavail * info.bsize;
  }

  #sessionDir(sessionId: string): string {
    if (!SAFE_NAME.test(sessionId)) throw new UploadError('INTERNAL', `unsafe session folder name ${JSON.stringify(sessionId)}`);
    return path.join(this.#temp, sessionId);
  }

  #blob(sessionId: string, name: string): string {
    if (!SAFE_NAME.test(name)) throw new UploadError('INTERNAL', `unsafe blob name ${JSON.stringify(name)}`);
    return path.join(this.#sessionDir(sessionId), name);
  }
}

function segmentsOf(uploader: string, relativePath: string): string[] {
  return [uploader, ...relativePath.split('/')];
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function* readRange(file: string, offset: number, length: number): AsyncIterable<Buffer> {
  const handle = await open(file, 'r');
  try {
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_PIECE, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new UploadError('INTERNAL', `${path.basename(file)} ended at byte ${position}, before ${end}`);
      position += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
