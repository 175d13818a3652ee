import path from 'node:path';
import picomatch from 'picomatch';
import { present } from '../../common/errors/present.js';

/**
 * What a file in the recording root is, from its name alone. rosbag2 names splits
 * `<bag folder>_<index>.<ext>` (`run1/run1_0.mcap`), adds `.zstd` in file-compression mode and
 * writes `metadata.yaml` when the recording stops.
 */
export type FileRole = 'split' | 'metadata' | 'other';

export interface BagFileInfo {
  role: FileRole;
  /** Folder relative to the watch root, `/`-separated; '' for the root itself. */
  dir: string;
  name: string;
  /** The split's stem (`run1` for `run1_3.mcap`); undefined for non-splits. */
  stem: string | undefined;
  /** Numeric split index (`_10` is 10, after 9). */
  index: number | undefined;
  /** The storage format, which decides the end-of-file check (`mcap` has trailing magic bytes). */
  storage: 'mcap' | 'db3' | undefined;
  /** rosbag2 file-compression output (`.mcap.zstd`, `.db3.zstd`). */
  compressed: boolean;
}

const SPLIT_NAME = /^(.+)_(\d+)\.(mcap|db3)(\.zstd)?$/;
const BAG_FILE = /\.(mcap|db3)(\.zstd)?$/;
export const METADATA_FILE = 'metadata.yaml';

/**
 * Never uploaded, whatever the globs say: files still being written by a recorder
 * (`.active`), SQLite side files (`-wal`, `-shm`, `-journal`), and hidden files or folders
 * (editors' and rsync's temporaries, and the default `.uploaded/` move target).
 */
export function isNeverUploaded(relPath: string): boolean {
  const segments = relPath.split('/');
  if (segments.some((segment) => segment.startsWith('.'))) return true;
  const name = segments[segments.length - 1] ?? '';
  return name.endsWith('.active') || name.endsWith('-wal') || name.endsWith('-shm') || name.endsWith('-journal');
}

/** Classifies a path relative to the watch root; the caller decides separately whether it is wanted. */
export function classifyFile(relPath: string): BagFileInfo {
  const dir = path.posix.dirname(relPath) === '.' ? '' : path.posix.dirname(relPath);
  const name = path.posix.basename(relPath);
  const split = SPLIT_NAME.exec(name);
  if (split) {
    return {
      role: 'split',
      dir,
      name,
      stem: present(split[1], "a split name's stem"),
      index: Number(split[2]),
      storage: split[3] as 'mcap' | 'db3',
      compressed: split[4] !== undefined,
    };
  }
  if (name === METADATA_FILE)
    return { role: 'metadata', dir, name, stem: undefined, index: undefined, storage: undefined, compressed: false };
  const bag = BAG_FILE.exec(name);
  return {
    role: 'other',
    dir,
    name,
    stem: undefined,
    index: undefined,
    storage: bag ? (bag[1] as 'mcap' | 'db3') : undefined,
    compressed: bag ? bag[2] !== undefined : false,
  };
}

/** True for files the watcher uploads without any include glob: splits, `metadata.yaml`, `.mcap`/`.db3`(`.zstd`). */
export function isBagFile(info: BagFileInfo): boolean {
  return info.role !== 'other' || info.storage !== undefined;
}

/** Why a file is not uploaded: a temporary or hidden file, an `exclude` glob, or no rule takes it. */
export type IgnoredBecause = 'temporary' | 'excluded' | 'not-a-bag-file';

export interface FileFilter {
  /** Whether a file (path relative to the root) is uploaded. */
  wantsFile(relPath: string): boolean;
  /** Why a file is not uploaded, or undefined when it is. */
  ignoredBecause(relPath: string): IgnoredBecause | undefined;
  /** Whether a folder (path relative to the root) is skipped entirely: hidden, or matched by an exclude glob. */
  skipsDir(relPath: string): boolean;
}

/**
 * Include/exclude globs (picomatch). A glob without `/` matches a file or folder name at any
 * depth (`*.json`, `scratch`); one with `/` matches the path relative to the root
 * (`robot1/**` or `**\/camera_*.mcap`). A folder that matches an exclude glob is skipped with
 * everything in it. Exclude wins over include and over the bag file rules.
 */
export function createFileFilter(options: { include: readonly string[]; exclude: readonly string[] }): FileFilter {
  const included = globMatcher(options.include);
  const excluded = globMatcher(options.exclude);
  const skipsDir = (relPath: string): boolean => relPath !== '' && (isNeverUploaded(relPath) || excluded(relPath));
  const ignoredBecause = (relPath: string): IgnoredBecause | undefined => {
    if (isNeverUploaded(relPath)) return 'temporary';
    if (excluded(relPath)) return 'excluded';
    const segments = relPath.split('/');
    for (let i = 1; i < segments.length; i++) if (excluded(segments.slice(0, i).join('/'))) return 'excluded';
    return isBagFile(classifyFile(relPath)) || included(relPath) ? undefined : 'not-a-bag-file';
  };
  return {
    wantsFile: (relPath) => ignoredBecause(relPath) === undefined,
    ignoredBecause,
    skipsDir(relPath) {
      if (skipsDir(relPath)) return true;
      const segments = relPath.split('/');
      for (let i = 1; i < segments.length; i++) if (excluded(segments.slice(0, i).join('/'))) return true;
      return false;
    },
  };
}

function globMatcher(globs: readonly string[]): (relPath: string) => boolean {
  const byName = globs.filter((glob) => !glob.includes('/'));
  const byPath = globs.filter((glob) => glob.includes('/'));
  const name = byName.length ? picomatch(byName, { dot: true }) : undefined;
  const full = byPath.length ? picomatch(byPath, { dot: true }) : undefined;
  return (relPath) => (name?.(path.posix.basename(relPath)) ?? false) || (full?.(relPath) ?? false);
}
