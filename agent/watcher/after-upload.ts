import { copyFile, lstat, rename, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { makeDirectory } from '../../common/fs/make-directory.js';
import { syncFile, syncFolder } from '../../common/fs/sync-folder.js';
import type { AfterUploadIntent } from './upload-ledger.js';

export type AfterUploadPolicy = 'keep' | 'delete' | 'move';

export interface AfterUploadTarget {
  /** Absolute local path. */
  path: string;
  /** Path relative to the watch root (the server path), which the move target keeps. */
  remotePath: string;
  /** True for a bag's metadata.yaml: the bag is complete, so its emptied folder may go. */
  completesBag: boolean;
  /** The version the server verified (stat after the upload). */
  version: { size: number; mtimeMs: number; ino: number };
  sha256: string;
}

/** The move target: `moveTo`, or `<root>/.uploaded` (hidden, so the watcher skips it). */
export function moveTarget(root: string, moveTo: string | undefined): string {
  return path.resolve(moveTo ?? path.join(root, '.uploaded'));
}

/**
 * The intent of applying `policy` (delete or move) to a verified file: what is written durably
 * before the action (UploadLedger.addIntent), so a crash or a power loss before the action is
 * durable cannot lose it (replayed at start-up by carryOut). The caller guarantees the server
 * verified this exact version (its SHA-256) and that the file did not change since; nothing else
 * may call this.
 */
export function afterUploadIntent(
  policy: 'delete' | 'move',
  file: AfterUploadTarget,
  options: { root: string; moveTo: string | undefined },
  now = Date.now(),
): AfterUploadIntent {
  return {
    localPath: file.path,
    action: policy,
    destination:
      policy === 'move'
        ? path.join(moveTarget(options.root, options.moveTo), ...file.remotePath.split('/'))
        : undefined,
    remotePath: file.remotePath,
    size: file.version.size,
    mtimeMs: file.version.mtimeMs,
    ino: file.version.ino,
    sha256: file.sha256,
    completesBag: file.completesBag,
    root: options.root,
    createdAt: now,
  };
}

/**
 * What carrying out an intent found: `done` (deleted or moved now, durably), `already` (it had
 * been done before, e.g. by the process that crashed; made durable now), `changed` (the file at
 * the path is not the verified version: left alone), `gone` (neither the file nor, for a move,
 * its copy: nothing to do).
 */
export type IntentOutcome = 'done' | 'already' | 'changed' | 'gone';

/**
 * Carries out an after-upload intent, idempotently (it runs again at every start-up until the
 * intent is removed): the file is touched only while it is still the verified version (same
 * inode, size and mtime, a regular file, looked at with lstat just before the action), and each
 * folder an unlink or rename changed is fsynced before this resolves, so the action survives a
 * power loss once the caller removes the intent. `delete` removes the file; `move` renames it
 * into the move target (copy, fsync, then unlink across file systems). Once the bag is complete
 * (its metadata.yaml was the last file) its emptied folder goes too (never the watch root).
 */
export async function carryOut(intent: AfterUploadIntent): Promise<IntentOutcome> {
  const source = intent.localPath;
  const info = await lstat(source).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (info === undefined) {
    // Done before a crash (perhaps not durably), or removed by someone else.
    const moved = intent.destination !== undefined && (await isVersion(intent.destination, intent, false));
    if (intent.action === 'delete' || moved) {
      syncFolder(path.dirname(source));
      if (moved) syncFolder(path.dirname(intent.destination!));
      await removeEmptiedBag(intent);
      return 'already';
    }
    return 'gone';
  }
  if (!info.isFile() || !sameVersion(info, intent)) return 'changed';
  if (intent.action === 'delete') {
    await unlink(source);
    syncFolder(path.dirname(source));
  } else {
    const destination = intent.destination!;
    await makeDirectory(path.dirname(destination));
    try {
      await rename(source, destination);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      // Another file system: a durable copy first, then the original goes.
      await copyFile(source, destination);
      await syncFile(destination);
      syncFolder(path.dirname(destination));
      await unlink(source);
    }
    syncFolder(path.dirname(destination));
    syncFolder(path.dirname(source));
  }
  await removeEmptiedBag(intent);
  return 'done';
}

async function removeEmptiedBag(intent: AfterUploadIntent): Promise<void> {
  const folder = path.dirname(intent.localPath);
  if (!intent.completesBag || path.resolve(folder) === path.resolve(intent.root)) return;
  try {
    await rmdir(folder);
    syncFolder(path.dirname(folder));
  } catch {
    // Not empty (other files the agent does not upload), or already gone: the folder stays.
  }
}

function sameVersion(
  info: { ino: number; size: number; mtimeMs: number },
  version: { ino: number; size: number; mtimeMs: number },
): boolean {
  return info.ino === version.ino && info.size === version.size && info.mtimeMs === version.mtimeMs;
}

/** Whether `file` is the intent's version (by size and mtime; by inode too when `sameInode`). */
async function isVersion(file: string, intent: AfterUploadIntent, sameInode: boolean): Promise<boolean> {
  const info = await lstat(file).catch(() => undefined);
  if (!info?.isFile() || info.size !== intent.size) return false;
  return sameInode ? info.ino === intent.ino : true;
}
