import { copyFile, rename, rmdir, unlink } from 'node:fs/promises';
import { makeDirectory } from '../../common/fs/make-directory.js';
import path from 'node:path';

export type AfterUploadPolicy = 'keep' | 'delete' | 'move';

export interface AfterUploadTarget {
  /** Absolute local path. */
  path: string;
  /** Path relative to the watch root (the server path), which the move target keeps. */
  remotePath: string;
  /** True for a bag's metadata.yaml: the bag is complete, so its emptied folder may go. */
  completesBag: boolean;
}

/** The move target: `moveTo`, or `<root>/.uploaded` (hidden, so the watcher skips it). */
export function moveTarget(root: string, moveTo: string | undefined): string {
  return path.resolve(moveTo ?? path.join(root, '.uploaded'));
}

/**
 * Applies the after-upload policy to one file. The caller guarantees the server verified this
 * exact version (its SHA-256) and that the file did not change since; nothing else may call
 * this. `delete` removes the file and, once the bag is complete (its metadata.yaml was the
 * last file), the emptied bag folder; `move` keeps the folder structure under the target.
 * Returns where the file went.
 */
export async function applyAfterUpload(
  policy: AfterUploadPolicy,
  file: AfterUploadTarget,
  options: { root: string; moveTo: string | undefined },
): Promise<string | undefined> {
  if (policy === 'keep') return file.path;
  let destination: string | undefined;
  if (policy === 'delete') {
    await unlink(file.path);
  } else {
    destination = path.join(moveTarget(options.root, options.moveTo), ...file.remotePath.split('/'));
    await makeDirectory(path.dirname(destination));
    try {
      await rename(file.path, destination);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await copyFile(file.path, destination);
      await unlink(file.path);
    }
  }
  const folder = path.dirname(file.path);
  if (file.completesBag && path.resolve(folder) !== path.resolve(options.root)) {
    try {
      await rmdir(folder);
    } catch {
      // Not empty (other files the agent does not upload): the folder stays.
    }
  }
  return destination;
}
