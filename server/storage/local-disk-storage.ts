import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { access, link, mkdir, readdir, realpath, rename, rm, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { makeDirectory } from '../../common/fs/make-directory.js';
import {
  cutAndSync,
  type FileIdentity,
  lstatOrUndefined,
  openNoFollow,
  readHandle,
  writeToHandle,
} from './disk-files.js';
import { FolderSyncer } from './durable-fs.js';
import { closeAll, FOLDER_MODE, FolderHandle, type NotAFolder, openFolders } from './folder-handle.js';
import { checkStorageFolders } from './folder-permissions.js';
import { FlushBehind } from './flush-behind.js';
import { GZIP_SUFFIX } from './stored-file-layout.js';
import type { PartPlace, SpoolRef, StoredFile, StoredFileInfo, UploadStorage } from './upload-storage.js';

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
const TOP_FOLDERS = ['temp', 'completed', 'compressed'] as const;

/**
 * The storage on a local file system, laid out as the Python dashboard's was:
 * `temp/<session>/data` (the file assembled in place: part n at its offset) with the session's
 * spools beside it, `temp/files/<id>` (whole-file uploads), `temp/incoming/<spool>`,
 * `completed/<uploader>/<path>`, `compressed/<uploader>/<path>.gz`.
 *
 * **No symlink is ever followed below the storage root.** Every path is walked from its top
 * folder one component at a time through folder descriptors (FolderHandle: O_NOFOLLOW |
 * O_DIRECTORY, entries reached through the descriptor, never by a path resolved again), so a
 * folder swapped for a symlink by a local process between two steps is refused, not followed;
 * files are opened with O_NOFOLLOW. Containment is per uploader: nothing of
 * `completed/<uploader>/` can lead anywhere else, not even into another uploader's folder. A
 * committed file is verified afterwards (its inode is the staged file's and its folder is still
 * where the walk found it); otherwise it is taken back and the commit refused. At open the root,
 * its top folders and the folders above it must be writable by nobody but the server's user
 * (checkStorageFolders).
 */
export class LocalDiskStorage implements UploadStorage {
  readonly root: string;
  readonly #temp: string;
  readonly #completed: string;
  readonly #compressed: string;
  /** Whole-file staging uploads: they live in WHOLE_FILE_FOLDER, not in a folder of their own. */
  readonly #wholeFiles = new Set<string>();
  /** Staging uploads written and fsynced in one pass and not changed since: commit need not open them again. */
  readonly #synced = new Map<string, FileIdentity>();
  readonly #flushBehind = new FlushBehind();
  readonly #folderSyncer = new FolderSyncer();

  private constructor(root: string) {
    this.root = root;
    this.#temp = path.join(root, 'temp');
    this.#completed = path.join(root, 'completed');
    this.#compressed = path.join(root, 'compressed');
  }

  /**
   * Creates the folders when needed (mode 0750) and checks that nobody but the server's user can
   * write them (an UploadError STATE_DIR naming the folder and the fix otherwise). The root may
   * itself be a symlink (e.g. to a data volume): it is resolved once, here.
   */
  static async open(root: string): Promise<LocalDiskStorage> {
    await makeDirectory(root, FOLDER_MODE);
    const real = await realpath(root);
    for (const name of TOP_FOLDERS) {
      await mkdir(path.join(real, name), FOLDER_MODE).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    }
    await checkStorageFolders(
      real,
      TOP_FOLDERS.map((name) => path.join(real, name)),
    );
    return new LocalDiskStorage(real);
  }

  async createStaging(id: string, options: { wholeFile?: boolean } = {}): Promise<void> {
    checkName(id, 'staging');
    if (options.wholeFile) {
      this.#wholeFiles.add(id);
      return;
    }
    const temp = await FolderHandle.open(this.#temp);
    try {
      await mkdir(temp.entry(id), FOLDER_MODE);
      const folder = await this.#child(temp, id);
      try {
        await (
          await openNoFollow(folder.entry(DATA_FILE), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL)
        ).close();
      } finally {
        await folder.close();
      }
    } finally {
      await temp.close();
    }
  }

  async writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number> {
    this.#synced.delete(id);
    if (this.#wholeFiles.has(id)) {
      // Committed right after this write: fsync while the file is open, instead of opening it again to commit.
      const handle = await this.#inFolder(await this.#wholeFileFolder(true), (folder) =>
        openNoFollow(folder.entry(id), constants.O_WRONLY | constants.O_CREAT),
      );
      const { written, identity } = await writeToHandle(handle, part.offset, body, { sync: true });
      this.#synced.set(id, identity);
      return written;
    }
    // Created with the staging upload: when it is gone this rejects with ENOENT (isMissingStaging),
    // rather than starting an empty file that would hide the loss of what it held.
    const handle = await this.#openStaged(id, constants.O_WRONLY);
    const { written } = await writeToHandle(handle, part.offset, body, { sync: false });
    this.#flushBehind.wrote(id, () => this.#openStaged(id, constants.O_RDONLY), written);
    return written;
  }

  async *readStaged(id: string, offset: number, length: number): AsyncIterable<Buffer> {
    yield* readHandle(await this.#openStaged(id, constants.O_RDONLY), offset, length, `the staged data of ${id}`);
  }

  async hasStaging(id: string): Promise<boolean> {
    try {
      const handle = await this.#openStaged(id, constants.O_RDONLY);
      await handle.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  async commit(id: string, file: StoredFile, options: { size: number; replace: boolean }): Promise<void> {
    await this.#flushBehind.settle(id);
    const whole = this.#wholeFiles.has(id);
    const sourceFolder = whole ? await this.#wholeFileFolder(false) : await this.#stagingFolder(id);
    try {
      const source = sourceFolder.entry(whole ? id : DATA_FILE);
      // A file written and fsynced in one pass is on disk already, and has its size (every change forgets it).
      const identity = this.#synced.get(id) ?? (await cutAndSync(source, options.size));
      this.#synced.delete(id);
      await this.#place(file, identity, source, options.replace);
    } finally {
      await sourceFolder.close();
    }
    this.#wholeFiles.delete(id);
  }

  async abortStaging(id: string): Promise<void> {
    this.#flushBehind.forget(id);
    this.#synced.delete(id);
    if (this.#wholeFiles.delete(id)) {
      const folder = await this.#wholeFileFolder(false).catch(ignoreMissing);
      if (folder) await this.#inFolder(folder, (f) => unlink(f.entry(id)).catch(ignoreMissing));
      return;
    }
    checkName(id, 'staging');
    const temp = await FolderHandle.open(this.#temp);
    try {
      // rm never follows a symlink: a link planted in place of the folder is removed, not its target.
      await rm(temp.entry(id), { recursive: true, force: true });
    } finally {
      await temp.close();
    }
  }

  async listStaging(): Promise<string[]> {
    // Every entry: session folders, `files/`, `incoming/`, and gzip copies left by a crash (compress-*.gz).
    return (await readdir(this.#temp)).filter((name) => SAFE_NAME.test(name));
  }

  async writeSpool(spool: SpoolRef, body: AsyncIterable<Uint8Array>): Promise<number> {
    const name = spoolName(spool);
    const handle = await this.#inFolder(await this.#spoolFolder(spool.staging, true), (folder) =>
      openNoFollow(folder.entry(name), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC),
    );
    return (await writeToHandle(handle, 0, body, { sync: false })).written;
  }

  async *readSpool(spool: SpoolRef, length: number): AsyncIterable<Buffer> {
    const name = spoolName(spool);
    const handle = await this.#inFolder(await this.#spoolFolder(spool.staging, false), (folder) =>
      openNoFollow(folder.entry(name), constants.O_RDONLY),
    );
    yield* readHandle(handle, 0, length, `spool ${name}`);
  }

  async moveSpool(from: SpoolRef, to: SpoolRef): Promise<void> {
    const source = await this.#spoolFolder(from.staging, false);
    try {
      const target = from.staging === to.staging ? source : await this.#spoolFolder(to.staging, true);
      try {
        await rename(source.entry(spoolName(from)), target.entry(spoolName(to)));
      } finally {
        if (target !== source) await target.close();
      }
    } finally {
      await source.close();
    }
  }

  async removeSpool(spool: SpoolRef): Promise<void> {
    const name = spoolName(spool);
    const folder = await this.#spoolFolder(spool.staging, false).catch(ignoreMissing);
    if (folder) await this.#inFolder(folder, (f) => unlink(f.entry(name)).catch(ignoreMissing));
  }

  async stat(file: StoredFile): Promise<{ size: number } | undefined> {
    const found = await this.#findStored(this.#completed, segmentsOf(file));
    if (!found) return undefined;
    try {
      const info = await lstatOrUndefined(found.parent.entry(found.name));
      if (!info) return undefined;
      this.#checkTarget(info, segmentsOf(file));
      return { size: info.size };
    } finally {
      await closeAll(found.chain);
    }
  }

  async *read(file: StoredFile): AsyncIterable<Buffer> {
    const handle = await this.#openStored(file);
    const { size } = await handle.stat();
    yield* readHandle(handle, 0, size, file.path);
  }

  async *readRange(file: StoredFile, offset: number, length: number): AsyncIterable<Buffer> {
    yield* readHandle(await this.#openStored(file), offset, length, file.path);
  }

  /** Opens a stored file for reading without following a link anywhere below the root. */
  async #openStored(file: StoredFile): Promise<FileHandle> {
    const segments = segmentsOf(file);
    const found = await this.#findStored(this.#completed, segments);
    if (!found) throw Object.assign(new Error(`${file.path} is not stored`), { code: 'ENOENT' });
    return this.#inFolders(found.chain, () =>
      openNoFollow(found.parent.entry(found.name), constants.O_RDONLY).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ELOOP') throw symlinkRefused(segments, segments.length - 1);
        throw error;
      }),
    );
  }

  async *listStored(): AsyncIterable<StoredFileInfo> {
    const completed = await FolderHandle.open(this.#completed);
    try {
      for (const uploader of (await readdir(completed.entry('.'), { withFileTypes: true })).map((e) => e.name)) {
        const opened = await completed.openChild(uploader, false);
        if ('notAFolder' in opened) continue;
        try {
          for await (const entry of walkFiles(opened.folder, '')) yield { uploader, ...entry };
        } finally {
          await opened.folder.close();
        }
      }
    } finally {
      await completed.close();
    }
  }

  async writeCompressed(
    file: StoredFile,
    body: AsyncIterable<Uint8Array>,
    keep: (size: number) => boolean,
  ): Promise<number | undefined> {
    const name = `compress-${randomUUID()}.gz`;
    const temp = await FolderHandle.open(this.#temp);
    try {
      const handle = await openNoFollow(temp.entry(name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
      let size = 0;
      try {
        for await (const piece of body) {
          await handle.write(piece, 0, piece.byteLength, size);
          size += piece.byteLength;
        }
        await handle.sync();
        const { dev, ino } = await handle.stat();
        if (!keep(size)) return undefined;
        await this.#put(this.#compressed, compressedSegmentsOf(file), temp.entry(name), { dev, ino }, true);
        return size;
      } finally {
        await handle.close();
      }
    } finally {
      await unlink(temp.entry(name)).catch(() => undefined);
      await temp.close();
    }
  }

  async checkReady(): Promise<void> {
    await access(this.#temp, constants.W_OK);
  }

  async freeSpace(): Promise<number> {
    const info = await statfs(this.root);
    return info.bavail * info.bsize;
  }

  /**
   * Makes the staged file `source` visible as `file`: without replace by link (which never
   * replaces an existing file, atomically), then the staged name is removed; with replace by
   * rename. Verified, then durable (see #put). A replaced file's gzip copy goes too.
   */
  async #place(file: StoredFile, identity: FileIdentity, source: string, replace: boolean): Promise<void> {
    const replaced = await this.#put(this.#completed, segmentsOf(file), source, identity, replace);
    if (replace && replaced) await this.#removeCompressed(file).catch(() => undefined);
  }

  /**
   * Puts the file `source` (whose identity is `identity`) at `segments` under the top folder
   * `top`, creating folders as needed, through folder descriptors only. Afterwards the new entry
   * must be that very file and its folder still where the walk found it; otherwise (a local
   * process moved or swapped a folder meanwhile) the entry is taken back and the commit refused,
   * so a file never stays anywhere but where it was meant to go. Then the folder, and each
   * folder above it that got a new entry, are fsynced. Resolves true when a file was replaced.
   */
  async #put(
    top: string,
    segments: readonly string[],
    source: string,
    identity: FileIdentity,
    replace: boolean,
  ): Promise<boolean> {
    const name = segments[segments.length - 1]!;
    const root = await FolderHandle.open(top);
    try {
      const walked = await openFolders(root, segments.slice(0, -1), true);
      if ('notAFolder' in walked) throw notAFolderError(segments, walked.at, walked.notAFolder);
      const { chain, firstCreated } = walked;
      try {
        const parent = chain[chain.length - 1]!;
        const target = parent.entry(name);
        const before = await lstatOrUndefined(target);
        if (before) this.#checkTarget(before, segments);
        if (replace) {
          await rename(source, target);
        } else {
          try {
            await link(source, target);
          } catch (error) {
            const code = (error as NodeJS.ErrnoException).code;
            if (code === 'EEXIST') throw alreadyStored(segments, error);
            if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw error;
            // No hard links on this file system: check, then rename (a small race, only here).
            if (await lstatOrUndefined(target)) throw alreadyStored(segments, error);
            await rename(source, target);
          }
        }
        const placed = await lstatOrUndefined(target);
        const moved = !(await parent.isStillAt());
        if (!placed || placed.dev !== identity.dev || placed.ino !== identity.ino || moved) {
          await this.#takeBack(target, source, identity, replace);
          throw new UploadError(
            'INTERNAL',
            `A folder of ${segments.slice(1).join('/')} was moved or replaced while the file was ` +
              `being stored (is another process changing the storage folder?); nothing was stored, try again`,
          );
        }
        if (!replace) await unlink(source).catch(() => undefined);
        // A folder created for this file is durable only once its own parent is synced too. The
        // fsyncs run at once: the file system commits them together.
        const synced = new Set([...(firstCreated === undefined ? [] : chain.slice(firstCreated)), parent]);
        await Promise.all([...synced].map((folder) => this.#folderSyncer.sync(folder.absolute, () => folder.sync())));
        return before !== undefined;
      } finally {
        await closeAll(chain.slice(1));
      }
    } finally {
      await root.close();
    }
  }

  /** Undoes a placement that landed elsewhere than intended: the entry goes, or (renamed) goes back. */
  async #takeBack(target: string, source: string, identity: FileIdentity, renamed: boolean): Promise<void> {
    const info = await lstatOrUndefined(target);
    if (!info || info.dev !== identity.dev || info.ino !== identity.ino) return;
    if (renamed) await rename(target, source).catch(() => unlink(target));
    else await unlink(target);
  }

  async #removeCompressed(file: StoredFile): Promise<void> {
    const found = await this.#findStored(this.#compressed, compressedSegmentsOf(file));
    if (!found) return;
    try {
      const info = await lstatOrUndefined(found.parent.entry(found.name));
      if (info?.isFile()) await unlink(found.parent.entry(found.name));
    } finally {
      await closeAll(found.chain);
    }
  }

  /** A stored file's folder chain (close it) and name; undefined when a folder of its path is missing. */
  async #findStored(
    top: string,
    segments: readonly string[],
  ): Promise<{ chain: FolderHandle[]; parent: FolderHandle; name: string } | undefined> {
    const root = await FolderHandle.open(top);
    const walked = await openFolders(root, segments.slice(0, -1), false).catch(async (error: unknown) => {
      await root.close();
      throw error;
    });
    if ('notAFolder' in walked) {
      await root.close();
      if (walked.notAFolder === 'missing') return undefined;
      throw notAFolderError(segments, walked.at, walked.notAFolder);
    }
    return {
      chain: walked.chain,
      parent: walked.chain[walked.chain.length - 1]!,
      name: segments[segments.length - 1]!,
    };
  }

  /** Refuses what stands at a stored path when it is not a regular file (a symlink, a folder). */
  #checkTarget(info: { isSymbolicLink(): boolean; isDirectory(): boolean }, segments: readonly string[]): void {
    if (info.isSymbolicLink()) throw symlinkRefused(segments, segments.length - 1);
    if (info.isDirectory())
      throw new UploadError('FILE_EXISTS', `${segments.slice(1).join('/')} is a folder on the server, not a file`);
  }

  /** temp/<id>, never through a symlink; a missing (or replaced) folder rejects with ENOENT (isMissingStaging). */
  async #stagingFolder(id: string): Promise<FolderHandle> {
    checkName(id, 'staging');
    return this.#inFolder(await FolderHandle.open(this.#temp), (temp) => this.#child(temp, id));
  }

  /** temp/files (created when `create`). */
  async #wholeFileFolder(create: boolean): Promise<FolderHandle> {
    return this.#inFolder(await FolderHandle.open(this.#temp), async (temp) => {
      const opened = await temp.openChild(WHOLE_FILE_FOLDER, create);
      if ('notAFolder' in opened) throw missing(`temp/${WHOLE_FILE_FOLDER}`, opened.notAFolder);
      return opened.folder;
    });
  }

  /** The folder of a staging upload's spools, or the shared one (created when `create`). */
  async #spoolFolder(staging: string | undefined, create: boolean): Promise<FolderHandle> {
    if (staging !== undefined) return this.#stagingFolder(staging);
    return this.#inFolder(await FolderHandle.open(this.#temp), async (temp) => {
      const opened = await temp.openChild(SHARED_SPOOL_FOLDER, create);
      if ('notAFolder' in opened) throw missing(`temp/${SHARED_SPOOL_FOLDER}`, opened.notAFolder);
      return opened.folder;
    });
  }

  /** Opens the staged file of a staging upload (without following a symlink); ENOENT when it is gone. */
  async #openStaged(id: string, flags: number) {
    const whole = this.#wholeFiles.has(id);
    const folder = whole ? await this.#wholeFileFolder(false) : await this.#stagingFolder(id);
    return this.#inFolder(folder, (f) =>
      openNoFollow(f.entry(whole ? id : DATA_FILE), flags).catch((error: NodeJS.ErrnoException) => {
        // A symlink in place of the staged data is not the data: the staging upload is gone.
        if (error.code === 'ELOOP') throw missing(`temp/${id}/${DATA_FILE}`, 'symlink');
        throw error;
      }),
    );
  }

  async #child(folder: FolderHandle, name: string): Promise<FolderHandle> {
    const opened = await folder.openChild(name, false);
    if ('notAFolder' in opened) throw missing(`temp/${name}`, opened.notAFolder);
    return opened.folder;
  }

  /** Runs `use` with `folder`, then closes it. */
  async #inFolder<T>(folder: FolderHandle, use: (folder: FolderHandle) => Promise<T>): Promise<T> {
    try {
      return await use(folder);
    } finally {
      await folder.close();
    }
  }

  /** Runs `use`, then closes the chain's handles. */
  async #inFolders<T>(chain: readonly FolderHandle[], use: () => Promise<T>): Promise<T> {
    try {
      return await use();
    } finally {
      await closeAll(chain);
    }
  }
}

/**
 * The regular files under `folder` (paths relative to the uploader's folder), depth first; nothing else is followed or
 * listed.
 */
async function* walkFiles(folder: FolderHandle, prefix: string): AsyncIterable<Omit<StoredFileInfo, 'uploader'>> {
  for (const entry of await readdir(folder.entry('.'), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isFile()) {
      const info = await lstatOrUndefined(folder.entry(entry.name));
      if (info?.isFile()) yield { path: relative, size: info.size, changedAt: info.ctimeMs };
    } else if (entry.isDirectory()) {
      const opened = await folder.openChild(entry.name, false);
      if ('notAFolder' in opened) continue;
      try {
        yield* walkFiles(opened.folder, relative);
      } finally {
        await opened.folder.close();
      }
    }
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

function checkName(name: string, what: string): void {
  if (!SAFE_NAME.test(name)) throw new UploadError('INTERNAL', `unsafe ${what} name ${JSON.stringify(name)}`);
}

function spoolName(spool: SpoolRef): string {
  if (!SAFE_NAME.test(spool.name) || spool.name === DATA_FILE)
    throw new UploadError('INTERNAL', `unsafe spool name ${JSON.stringify(spool.name)}`);
  return spool.name;
}

/** An error isMissingStaging recognises: the staging upload (or its folder) is not there as the server made it. */
function missing(what: string, found: NotAFolder): NodeJS.ErrnoException {
  return Object.assign(new Error(`${what} is ${found === 'missing' ? 'missing' : `a ${found}, not ours`}`), {
    code: 'ENOENT',
  });
}

function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

/**
 * A symlink met at `segments[index]` (segments: the uploader, then the path). Messages name the
 * path as the client gave it, or the uploader's own folder when that is the link.
 */
function symlinkRefused(segments: readonly string[], index: number): UploadError {
  const whole = segments.slice(1).join('/');
  if (index === 0)
    return new UploadError(
      'INVALID_PATH',
      `The storage folder of uploader ${segments[0]} is a symbolic link on the server; the server ` +
        `never follows one, so nothing can be stored for this uploader until the link is replaced by a folder`,
    );
  return new UploadError(
    'INVALID_PATH',
    index === segments.length - 1
      ? `${whole} is a symbolic link on the server; the server never follows one`
      : `${segments.slice(1, index + 1).join('/')} is a symbolic link on the server; the server ` +
          `never follows one, so ${whole} cannot be stored there`,
  );
}

function notAFolderError(segments: readonly string[], index: number, found: NotAFolder): UploadError {
  if (found === 'symlink') return symlinkRefused(segments, index);
  if (index === 0)
    return new UploadError('INTERNAL', `The storage folder of uploader ${segments[0]} is a file on the server`);
  return new UploadError(
    'FILE_EXISTS',
    `${segments.slice(1, index + 1).join('/')} is a file on the server, so ${segments.slice(1).join('/')} ` +
      `cannot be stored`,
  );
}

function alreadyStored(segments: readonly string[], cause: unknown): UploadError {
  return new UploadError('FILE_EXISTS', `${segments.slice(1).join('/')} is already stored`, { cause });
}
