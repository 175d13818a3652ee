import type { Stats } from 'node:fs';
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { makeDirectory } from '../../common/fs/make-directory.js';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';

export interface ResolvedPath {
  /** Absolute path of the target (which may not exist yet). */
  absolute: string;
  /** True when something (a file) exists at the target. */
  exists: boolean;
  /** Its size, when it exists. */
  size: number | undefined;
  /** Folders this call created (top-down): their entries are new in their parents. */
  created: string[];
}

/**
 * Resolves `<root>/<segments...>` so that it can never leave the storage root: the parent
 * folder's real path must lie inside the root (a symlink is followed only when it stays inside),
 * and the final component must not be a symlink or a folder. Segments come from validated
 * relative paths (no `..`, no absolute paths); this is the second line of defence, against links
 * planted inside the storage folder.
 *
 * Every call checks the disk again (nothing is cached, so a link planted later is refused just
 * the same); it costs two calls through libuv's pool for an existing folder, whatever its depth:
 * one `realpath` of the parent (the C library resolves every component in it) and one `lstat` of
 * the target. Only a parent that does not exist yet is walked segment by segment (and created).
 */
export class SafePathResolver {
  readonly #root: string;

  /** `root` must already be a real path (see `realRoot`). */
  constructor(root: string) {
    this.#root = root;
  }

  get root(): string {
    return this.#root;
  }

  async resolve(segments: readonly string[], options: { createParents: boolean }): Promise<ResolvedPath> {
    const name = segments.at(-1);
    if (name === undefined) throw new UploadError('INVALID_PATH', 'the path names no file (it has no segments)');
    const parents = segments.slice(0, -1);
    const created: string[] = [];
    let parent: string;
    try {
      parent = parents.length === 0 ? this.#root : await this.#checkedReal(path.join(this.#root, ...parents), segments);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      // A folder is missing (or a file stands where a folder should): walk the segments to create
      // it or to name the culprit.
      const walked = await this.#walk(segments, options.createParents, created);
      if (walked === undefined)
        return { absolute: path.join(this.#root, ...segments), exists: false, size: undefined, created };
      parent = walked;
    }
    const target = path.join(parent, name);
    let info: Stats | undefined;
    try {
      info = await lstatOrUndefined(target);
    } catch (error) {
      // The parent resolved to a file: the walk names the segment.
      if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') await this.#walk(segments, false, []);
      throw error;
    }
    if (info?.isSymbolicLink()) {
      throw new UploadError(
        'INVALID_PATH',
        `${segments.join('/')} is a symbolic link on the server; refusing to write through it`,
      );
    }
    if (info?.isDirectory())
      throw new UploadError('FILE_EXISTS', `${segments.join('/')} is a folder on the server, not a file`);
    return { absolute: target, exists: info !== undefined, size: info?.size, created };
  }

  /**
   * The parent folder of the target, one segment at a time: every existing component is checked
   * with lstat (a symlink followed only inside the root), missing ones are created when
   * `createParents` (and listed in `created`); undefined when one is missing and may not be
   * created.
   */
  async #walk(segments: readonly string[], createParents: boolean, created: string[]): Promise<string | undefined> {
    let current = this.#root;
    for (const [i, segment] of segments.slice(0, -1).entries()) {
      const next = path.join(current, segment);
      const info = await lstatOrUndefined(next);
      if (!info) {
        if (!createParents) return undefined;
        const made = await mkdir(next).then(
          () => true,
          (error: NodeJS.ErrnoException) => {
            if (error.code !== 'EEXIST') throw error;
            return false;
          },
        );
        // `current` is a real path inside the root: a plain folder in it is one too, so only a
        // symlink that took the new folder's place needs resolving (realpath of every level
        // would cost O(depth²) for a deep new path).
        const placed = await lstat(next);
        current = placed.isDirectory() && !placed.isSymbolicLink() ? next : await this.#checkedReal(next, segments);
        if (made) created.push(current);
        continue;
      }
      if (info.isSymbolicLink()) {
        current = await this.#checkedReal(next, segments);
        const real = await lstat(current);
        if (!real.isDirectory()) throw notAFolder(segments, i);
        continue;
      }
      if (!info.isDirectory()) throw notAFolder(segments, i);
      current = next;
    }
    return current;
  }

  async #checkedReal(candidate: string, segments: readonly string[]): Promise<string> {
    const real = await realpath(candidate);
    if (real !== this.#root && !real.startsWith(this.#root + path.sep)) {
      throw new UploadError(
        'INVALID_PATH',
        `${segments.join('/')} would leave the storage root through a symbolic link`,
      );
    }
    return real;
  }
}

/** Creates the folder when needed and returns its real path (the root itself may be a symlink). */
export async function realRoot(folder: string): Promise<string> {
  await makeDirectory(folder);
  return realpath(folder);
}

async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function notAFolder(segments: readonly string[], index: number): UploadError {
  return new UploadError(
    'FILE_EXISTS',
    `${segments.slice(0, index + 1).join('/')} is a file on the server, so ${segments.join('/')} cannot be stored`,
  );
}
