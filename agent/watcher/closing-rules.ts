import type { ClosingSignal, TrackedFile } from './tracked-file.js';

/**
 * The rules that decide, from one bag folder's files, when a file is closing and in which order
 * closed files are released. Pure functions of the folder's state, so they are tested directly.
 *
 * rosbag2 creates split N+1 *before* it closes split N, and writes metadata.yaml *before* it
 * closes the last split (seen with inotify, ../shared/fixtures/rosbag2-humble/). So these
 * signals only mean *closing*; the watcher still confirms closure (quiet period, MCAP end magic,
 * no writer in /proc) before a file is released.
 */

export interface RuleClock {
  /** Monotonic ms. */
  now: number;
  settleMs: number;
}

const isSettled = (file: TrackedFile, clock: RuleClock): boolean => clock.now - file.settledSince >= clock.settleMs;

/** The same split (same stem and index) in the other form: `x_1.mcap` ↔ `x_1.mcap.zstd`. */
function sibling(file: TrackedFile, folder: readonly TrackedFile[], compressed: boolean): TrackedFile | undefined {
  return folder.find(
    (other) =>
      other !== file &&
      other.role === 'split' &&
      other.stem === file.stem &&
      other.index === file.index &&
      other.storage === file.storage &&
      other.compressed === compressed,
  );
}

/** A plain split whose `.zstd` exists is transient in file-compression mode: it is never uploaded. */
export function isTransientPlain(file: TrackedFile, folder: readonly TrackedFile[]): boolean {
  return file.role === 'split' && !file.compressed && sibling(file, folder, true) !== undefined;
}

/** Why the file counts as closing, or undefined while it may still be written. */
export function closingSignal(
  file: TrackedFile,
  folder: readonly TrackedFile[],
  clock: RuleClock,
): ClosingSignal | undefined {
  if (file.role === 'metadata') return 'metadata';
  if (file.marked) return 'marked';
  if (
    file.role === 'split' &&
    folder.some((other) => other.role === 'split' && other.stem === file.stem && (other.index ?? 0) > (file.index ?? 0))
  )
    return 'later-split';
  if (folder.some((other) => other.role === 'metadata')) return 'metadata';
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
  folder: readonly TrackedFile[],
  clock: RuleClock,
  walExists: boolean,
): string | undefined {
  if (isSettled(file, clock)) return undefined;
  if (file.role === 'split' && file.compressed) {
    const plain = sibling(file, folder, false);
    if (plain) return `still being compressed: ${plain.name} exists`;
  }
  if (
    file.role === 'split' &&
    !file.compressed &&
    folder.some((other) => other.role === 'split' && other.stem === file.stem && other.compressed)
  ) {
    return `file compression mode: waiting for ${file.name}.zstd`;
  }
  if (walExists) return `the SQLite write-ahead log ${file.name}-wal still exists`;
  return undefined;
}

/**
 * The folder's files to hand to the engine now, in order. Splits of one stem go strictly in
 * index order: a split is released only when every earlier one is released, uploaded or
 * transient. Other files go when ready. metadata.yaml goes last, once every other file of the
 * folder has been verified by the server, so a receiver knows the bag is complete when it
 * arrives.
 */
export function releasable(folder: readonly TrackedFile[]): TrackedFile[] {
  const result: TrackedFile[] = [];
  const stems = new Map<string, TrackedFile[]>();
  for (const file of folder) {
    if (file.role !== 'split' || file.stem === undefined) continue;
    const list = stems.get(file.stem) ?? [];
    list.push(file);
    stems.set(file.stem, list);
  }
  for (const splits of stems.values()) {
    splits.sort((a, b) => (a.index ?? 0) - (b.index ?? 0) || Number(b.compressed) - Number(a.compressed));
    for (const split of splits) {
      if (split.phase === 'transient' || split.phase === 'released' || split.phase === 'uploaded') continue;
      if (split.phase !== 'ready') break;
      result.push(split);
    }
  }
  for (const file of folder) if (file.role === 'other' && file.phase === 'ready') result.push(file);
  const metadata = folder.find((file) => file.role === 'metadata' && file.phase === 'ready');
  if (metadata) {
    const others = folder.filter((file) => file !== metadata && file.phase !== 'transient');
    if (others.every((file) => file.phase === 'uploaded')) result.push(metadata);
  }
  return result;
}
