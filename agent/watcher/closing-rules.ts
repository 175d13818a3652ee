import type { FolderIndex } from './folder-index.js';
import type { ClosingSignal, TrackedFile } from './tracked-file.js';

/**
 * The rules that decide, from one bag folder's files, when a file is closing. Pure functions of
 * the file and its folder's index (folder-index.ts: each question is O(1)), so they are tested
 * directly. The release order is the index's (`FolderIndex.releasable`).
 *
 * rosbag2 creates split N+1 *before* it closes split N, and writes metadata.yaml *before* it
 * closes the last split (seen with inotify, test/fixtures/rosbag2-humble/). So these signals only
 * mean *closing*; the watcher still confirms closure (quiet period, MCAP end magic, no writer in
 * /proc) before a file is released.
 */

export interface RuleClock {
  /** Monotonic ms. */
  now: number;
  settleMs: number;
}

export const isSettled = (file: TrackedFile, clock: RuleClock): boolean =>
  clock.now - file.settledSince >= clock.settleMs;

/** A plain split whose `.zstd` exists is transient in file-compression mode: it is never uploaded. */
export function isTransientPlain(file: TrackedFile, folder: FolderIndex): boolean {
  return file.role === 'split' && !file.compressed && folder.sibling(file, true) !== undefined;
}

/** Why the file counts as closing, or undefined while it may still be written. */
export function closingSignal(file: TrackedFile, folder: FolderIndex, clock: RuleClock): ClosingSignal | undefined {
  if (file.role === 'metadata') return 'metadata';
  if (file.marked) return 'marked';
  if (folder.laterSplitExists(file)) return 'later-split';
  if (folder.metadata !== undefined) return 'metadata';
  if (isSettled(file, clock)) return 'settled';
  return undefined;
}

/**
 * What still holds a closing file back before the I/O checks, or undefined. Each blocker gives
 * way once the file has been unchanged for the settle time (a crashed recorder or compressor
 * must not hold a bag back forever).
 */
export function closingBlocker(
  file: TrackedFile,
  folder: FolderIndex,
  clock: RuleClock,
  walExists: boolean,
): string | undefined {
  if (isSettled(file, clock)) return undefined;
  if (file.role === 'split' && file.compressed) {
    const plain = folder.sibling(file, false);
    if (plain) return `still being compressed: ${plain.name} exists`;
  }
  if (file.role === 'split' && !file.compressed && folder.stemCompressed(file.stem ?? '')) {
    return `file compression mode: waiting for ${file.name}.zstd`;
  }
  if (walExists) return `the SQLite write-ahead log ${file.name}-wal still exists`;
  return undefined;
}
