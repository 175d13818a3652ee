import type { BagFileInfo } from './bag-files.js';

/**
 * Where a watched file stands:
 * - `open`: seen, no closing signal yet;
 * - `closing`: a closing signal exists, and the file is being confirmed closed;
 * - `ready`: confirmed closed, waiting for its turn (split order, metadata last);
 * - `released`: handed to the upload engine;
 * - `uploaded`: the server verified it (this version: same size and mtime);
 * - `transient`: a plain split that gained its `.zstd` (file-compression mode); never uploaded.
 * - `refused`: its name holds a character no server path may contain (a control, an invisible
 *   format character such as a bidi override, a line separator): held back, never uploaded; a
 *   later split of its stem and its bag's metadata.yaml wait for it. Renaming it makes a new file.
 */
export type FilePhase = 'open' | 'closing' | 'ready' | 'released' | 'uploaded' | 'transient' | 'refused';

/** Why a file counts as closing. */
export type ClosingSignal = 'later-split' | 'metadata' | 'marked' | 'settled';

export interface TrackedFile extends BagFileInfo {
  /** Absolute path, with the watch root's symlinks resolved (as /proc shows it). */
  path: string;
  /** Path relative to the watch root. */
  relPath: string;
  /** Path on the server: the bag's folder structure relative to the watch root. */
  remotePath: string;
  bagName: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** Monotonic ms since which this process has seen no change in size, mtime or inode. */
  stableSince: number;
  /** Like stableSince, but also trusting the mtime of a file found at start-up (for the settle fallback). */
  settledSince: number;
  /** The ROS layer reported it closed (rosbag2 /events/write_split). */
  marked: boolean;
  phase: FilePhase;
  /** Human-readable reason while it waits (for the status). */
  reason: string;
  /** The closing signal that led to its confirmation. */
  signal: ClosingSignal | undefined;
  /** A different version was uploaded before: upload with replace. */
  replace: boolean;
  /** Cached end-magic result for `size:mtimeMs`. */
  magic: { key: string; ok: boolean } | undefined;
  /** Date.now() when first seen. */
  firstSeen: number;
}

export function statKey(file: { size: number; mtimeMs: number }): string {
  return `${file.size}:${file.mtimeMs}`;
}
