import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, mkdir, open, readdir, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { cutAndSync, statOrUndefined, writeFile } from './disk-files.js';
import { FolderSyncer, fsyncDir } from './durable-fs.js';
import { FlushBehind } from './flush-behind.js';
import { readRange } from './read-range.js';
import { realRoot, SafePathResolver } from './safe-path.js';
import { GZIP_SUFFIX } from './stored-file-layout.js';
import type { PartPlace, SpoolRef, StoredFile, UploadStorage } from './upload-storage.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** The file a session's staging upload is assembled in, in its temp folder. */
const DATA_FILE = 'data';
/**
 * The one folder of whole-file uploads (PUT /v1/files): one file per upload, named by its id,
 * so no folder is created and deleted per request. It belongs to no session: the start-up
 * sweep deletes whatever a crash left in it.
 */
const WHOLE_FILE_FOLDER = 'files';
/** The spools of no staging upload yet (legacy form parts that arrive before their upload_id). */
const SHARED_SPOOL_FOLDER = 'incoming';

/**
 * The storage on a local file system, laid out as the Python dashboard's was:
 * `temp/<session>/data` (the file assembled in place: part n at its offset) with the session's
 * spools beside it, `temp/files/<id>` (whole-file uploads), `temp/incoming/<spool>`,
 * `completed/<uploader>/<path>`, `compressed/<uploader>/<path>.gz`.
 */
export class LocalDiskStorage implements UploadStorage {
  readonly root: string;
  readonly #temp: string;
  readonly #completed: SafePathResolver;
  readonly #compressed: SafePathResolver;
  /** Whole-file staging uploads: they live in WHOLE_FILE_FOLDER, not in a folder of their own. */
  readonly #wholeFiles = new Set<string>();
  /** Staged files written and fsynced in one pass and not changed since: commit need not open them again. */
  readonly #synced = new Set<string>();
  readonly #flushBehind = new FlushBehind();
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
    const [temp, completed, compressed] = await Promise.all([
      realRoot(path.join(real, 'temp')),
      realRoot(path.join(real, 'completed')),
      realRoot(path.join(real, 'compressed')),
    ]);
    return new LocalDiskStorage(real, temp, completed, compressed);
  }

  async createStaging(id: string, options: { wholeFile?: boolean } = {}): Promise<void> {
    if (options.wholeFile) {
      this.#stagingFolder(id);
      this.#wholeFiles.add(id);
      return;
    }
    const folder = this.#stagingFolder(id);
    await mkdir(folder, { recursive: true });
    const handle = await open(path.join(folder, DATA_FILE), 'w');
    await handle.close();
  }

  async writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number> {
    const file = this.#stagedFile(id);
    this.#synced.delete(file);
    if (this.#wholeFiles.has(id)) {
      // Committed right after this write: fsync while the file is open, instead of opening it again to commit.
      const written = await writeFile(file, constants.O_WRONLY | constants.O_CREAT, part.offset, body, { sync: true });
      this.#synced.add(file);
      return written;
    }
    // Created with the staging upload: when it is gone this rejects with ENOENT (isMissingStaging),
    // rather than starting an empty file that would hide the loss of what it held.
    const written = await writeFile(file, constants.O_WRONLY, part.offset, body, { sync: false });
    this.#flushBehind.wrote(id, file, written);
    return written;
  }

  async *readStaged(id: string, offset: number, length: number): AsyncIterable<Buffer> {
    yield* readRange(this.#stagedFile(id), offset, length);
  }

  async hasStaging(id: string): Promise<boolean> {
    return (await statOrUndefined(this.#stagedFile(id))) !== undefined;
  }

  async commit(id: string, file: StoredFile, options: { size: number; replace: boolean }): Promise<void> {
    const source = this.#stagedFile(id);
    await this.#flushBehind.settle(id);
    // A file written and fsynced in one pass is on disk already, and has its size (every change forgets it).
    if (!this.#synced.delete(source)) await cutAndSync(source, options.size);
    const target = await this.#completed.resolve(segmentsOf(file), { createParents: true });
    if (options.replace) {
      await rename(source, target.absolute);
    } else {
      // link() never replaces an existing file, atomically; the temp name is removed afterwards.
      try {
        await link(source, target.absolute);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new UploadError('FILE_EXISTS', `${file.path} is already stored`, { cause: error });
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw error;
        // No hard links on this file system: check, then rename (a small race, only here).
        if (await statOrUndefined(target.absolute))
          throw new UploadError('FILE_EXISTS', `${file.path} is already stored`, { cause: error });
        await rename(source, target.absolute);
      }
      await unlink(source).catch(() => undefined);
    }
    this.#wholeFiles.delete(id);
    // A folder created for this file is durable only once its own parent is synced too. The
    // fsyncs run at once: the file system commits them together (a deep new path costs one
    // journal commit, not one per folder).
    await Promise.all(
      [...target.created.map((folder) => path.dirname(folder)), path.dirname(target.absolute)].map((folder) =>
        this.#folderSyncer.sync(folder),
      ),
    );
    if (options.replace && target.exists) await this.#removeCompressed(file).catch(() => undefined);
  }

  async abortStaging(id: string): Promise<void> {
    this.#flushBehind.forget(id);
    if (this.#wholeFiles.delete(id)) {
      const file = path.join(this.#temp, WHOLE_FILE_FOLDER, id);
      this.#synced.delete(file);
      await unlink(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      return;
    }
    const folder = this.#stagingFolder(id);
    for (const file of this.#synced) if (path.dirname(file) === folder) this.#synced.delete(file);
    await rm(folder, { recursive: true, force: true });
  }

  async listStaging(): Promise<string[]> {
    // Every entry: session folders, `files/`, `incoming/`, and gzip copies left by a crash (compress-*.gz).
    return (await readdir(this.#temp)).filter((name) => SAFE_NAME.test(name));
  }

  async writeSpool(spool: SpoolRef, body: AsyncIterable<Uint8Array>): Promise<number> {
    return writeFile(this.#spoolFile(spool), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0, body, {
      sync: false,
    });
  }

  async *readSpool(spool: SpoolRef, length: number): AsyncIterable<Buffer> {
    yield* readRange(this.#spoolFile(spool), 0, length);
  }

  async moveSpool(from: SpoolRef, to: SpoolRef): Promise<void> {
    const target = this.#spoolFile(to);
    await mkdir(path.dirname(target), { recursive: true });
    await rename(this.#spoolFile(from), target);
  }

  async removeSpool(spool: SpoolRef): Promise<void> {
    await unlink(this.#spoolFile(spool)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async stat(file: StoredFile): Promise<{ size: number } | undefined> {
    const { size } = await this.#completed.resolve(segmentsOf(file), { createParents: false });
    return size === undefined ? undefined : { size };
  }

  async *read(file: StoredFile): AsyncIterable<Buffer> {
    const target = await this.#completed.resolve(segmentsOf(file), { createParents: false });
    const size = (await stat(target.absolute)).size;
    yield* readRange(target.absolute, 0, size);
  }

  async *readRange(file: StoredFile, offset: number, length: number): AsyncIterable<Buffer> {
    const target = await this.#completed.resolve(segmentsOf(file), { createParents: false });
    yield* readRange(target.absolute, offset, length);
  }

  async writeCompressed(
    file: StoredFile,
    body: AsyncIterable<Uint8Array>,
    keep: (size: number) => boolean,
  ): Promise<number | undefined> {
    const temp = path.join(this.#temp, `compress-${randomUUID()}.gz`);
    try {
      const handle = await open(temp, 'w');
      let size = 0;
      try {
        for await (const piece of body) {
          await handle.write(piece, 0, piece.byteLength, size);
          size += piece.byteLength;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (!keep(size)) return undefined;
      const target = await this.#compressed.resolve(compressedSegmentsOf(file), { createParents: true });
      await rename(temp, target.absolute);
      await fsyncDir(path.dirname(target.absolute));
      return size;
    } finally {
      await rm(temp, { force: true });
    }
  }

  async checkReady(): Promise<void> {
    await access(this.#temp, constants.W_OK);
  }

  async freeSpace(): Promise<number> {
    const info = await statfs(this.root);
    return info.bavail * info.bsize;
  }

  async #removeCompressed(file: StoredFile): Promise<void> {
    const target = await this.#compressed.resolve(compressedSegmentsOf(file), { createParents: false });
    if (target.exists) await rm(target.absolute, { force: true });
  }

  #stagingFolder(id: string): string {
    if (!SAFE_NAME.test(id)) throw new UploadError('INTERNAL', `unsafe staging name ${JSON.stringify(id)}`);
    return path.join(this.#temp, id);
  }

  #stagedFile(id: string): string {
    const folder = this.#stagingFolder(id);
    return this.#wholeFiles.has(id) ? path.join(this.#temp, WHOLE_FILE_FOLDER, id) : path.join(folder, DATA_FILE);
  }

  #spoolFile(spool: SpoolRef): string {
    if (!SAFE_NAME.test(spool.name) || spool.name === DATA_FILE)
      throw new UploadError('INTERNAL', `unsafe spool name ${JSON.stringify(spool.name)}`);
    return path.join(
      spool.staging === undefined ? path.join(this.#temp, SHARED_SPOOL_FOLDER) : this.#stagingFolder(spool.staging),
      spool.name,
    );
  }
}

function segmentsOf(file: StoredFile): string[] {
  return [file.uploader, ...file.path.split('/')];
}

function compressedSegmentsOf(file: StoredFile): string[] {
  const segments = segmentsOf(file);
  segments[segments.length - 1] += GZIP_SUFFIX;
  return segments;
}
