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

/**
 * Why a file is held back, when that needs someone's attention (a file merely being recorded,
 * or waiting for its turn, is not held back):
 * - `unclosed`: an `.mcap` without its end magic (or empty) that stopped changing: the recorder
 *   did not close it (a crash, a power loss). Uploaded anyway after `unclosedTimeout`.
 * - `symbolic-link`: a link, or a file reached through a linked folder: never followed.
 * - `not-a-regular-file`: a named pipe, socket or device under a bag file's name.
 * - `unusable-name`: a name the server cannot store (a control character, invalid UTF-8, ...).
 */
export type HeldBackCode = 'unclosed' | 'symbolic-link' | 'not-a-regular-file' | 'unusable-name';

/** A file held back, for the log (once), the status, `~/queue` and `/diagnostics`. */
export interface HeldBackFile {
  path: string;
  /** Its server path, or '' when it has none (an unusable name). */
  remotePath: string;
  bagName: string;
  code: HeldBackCode;
  reason: string;
  size: number;
  /** Date.now() when it was first held back for this reason. */
  since: number;
}

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
  /** Monotonic ms of the last lstat that saw it (unchanged since stableSince). */
  seenAt: number;
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
  /** Monotonic ms of the next look without an event (the watcher's schedule); Infinity when none. */
  dueAt: number;
  /** Set while it is held back for a reason that needs attention. */
  heldBack: HeldBackFile | undefined;
  /** Why it is uploaded although it was never closed ("recovered, unclosed"); undefined for a closed file. */
  unclosed: string | undefined;
  /** Just found (lstat'ed) and not reported changed since: the next pass judges it without a second lstat. */
  fresh: boolean;
}

export function statKey(file: { size: number; mtimeMs: number }): string {
  return `${file.size}:${file.mtimeMs}`;
}
