import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';

export interface ResolvedPath {
  /** Absolute path of the target (which may not exist yet). */
  absolute: string;
  /** lstat of the target, or undefined when it does not exist. */
  exists: boolean;
}

/**
 * Resolves `<root>/<segments...>` so that it can never leave the storage root: every existing
 * component is checked with lstat, a symlink is followed only when its real path stays inside the
 * root, and the final component must not be a symlink or a folder. Segments come from validated
 * relative paths (no `..`, no absolute paths); this is the second line of defence, against links
 * planted inside the storage folder.
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
    let current = this.#root;
    for (let i = 0; i < segments.length - 1; i += 1) {
      const next = path.join(current, segments[i]!);
      const info = await lstatOrUndefined(next);
      if (!info) {
        if (!options.createParents) return { absolute: path.join(next, ...segments.slice(i + 1)), exists: false };
        await mkdir(next).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        });
        current = await this.#checkedReal(next, segments);
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
    const target = path.join(current, segments[segments.length - 1]!);
    const info = await lstatOrUndefined(target);
    if (info?.isSymbolicLink()) {
      throw new UploadError('INVALID_PATH', `${segments.join('/')} is a symbolic link on the server; refusing to write through it`);
    }
    if (info?.isDirectory()) throw new UploadError('FILE_EXISTS', `${segments.join('/')} is a folder on the server, not a file`);
    return { absolute: target, exists: info !== undefined };
  }

  async #checkedReal(candidate: string, segments: readonly string[]): Promise<string> {
    const real = await realpath(candidate);
    if (real !== this.#root && !real.startsWith(this.#root + path.sep)) {
      throw new UploadError('INVALID_PATH', `${segments.join('/')} would leave the storage root through a symbolic link`);
    }
    return real;
  }
}

/** Creates the folder when needed and returns its real path (the root itself may be a symlink). */
export async function realRoot(folder: string): Promise<string> {
  await mkdir(folder, { recursive: true });
  return realpath(folder);
}

async function lstatOrUndefined(file: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function notAFolder(segments: readonly string[], index: number): UploadError {
  return new UploadError('FILE_EXISTS', `${segments.slice(0, index + 1).join('/')} is a file on the server, so ${segments.join('/')} cannot be stored`);
}
