import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p` that always ends: one mkdir per missing path component, from the top down, each
 * at most once. Node's `{ recursive: true }` retries a component whose parent exists but where
 * mkdir fails with ENOENT (as it does anywhere under /proc, and on some FUSE and network file
 * systems), and loops forever at full CPU instead of failing. Throws the system error of the
 * first component that cannot be created, with `path` naming it; EEXIST and ENOTDIR when a file
 * stands where a folder should be. `mode` (before the umask) applies to the folders it creates.
 */
export function makeDirectorySync(dir: string, mode?: number): void {
  for (const folder of missingFolders(dir, (candidate) => statSync(candidate, { throwIfNoEntry: false }))) {
    try {
      mkdirSync(folder, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(folder).isDirectory()) throw error;
    }
  }
  assertDirectory(dir, statSync(dir));
}

/** The asynchronous makeDirectorySync. `mode` (before the umask) applies to the folders it creates. */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  const infos = new Map<string, import('node:fs').Stats | undefined>();
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const info = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    infos.set(current, info);
    if (info !== undefined || path.dirname(current) === current) break;
  }
  for (const folder of missingFolders(dir, (candidate) => infos.get(candidate))) {
    try {
      await mkdir(folder, mode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(folder)).isDirectory()) throw error;
    }
  }
  assertDirectory(dir, await stat(dir));
}

/** The folders to create, top down: every ancestor of `dir` (and `dir`) below the deepest existing one. */
function missingFolders(dir: string, statOf: (candidate: string) => { isDirectory(): boolean } | undefined): string[] {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const info = statOf(current);
    if (info !== undefined) {
      assertDirectory(current, info);
      break;
    }
    missing.push(current);
    if (path.dirname(current) === current) break;
  }
  return missing.reverse();
}

function assertDirectory(folder: string, info: { isDirectory(): boolean }): void {
  if (info.isDirectory()) return;
  const error = new Error(`ENOTDIR: not a directory, mkdir '${folder}'`) as NodeJS.ErrnoException;
  error.code = 'ENOTDIR';
  error.path = folder;
  throw error;
}
