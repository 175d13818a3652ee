import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { kindOf } from '../../common/files/no-follow.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { classifyFile, isBagFile, isNeverUploaded } from './bag-files.js';

/** One file of an explicit upload (`upload <path>...`, the ROS enqueue service). */
export interface ListedFile {
  path: string;
  remotePath: string;
  bagName: string;
  /** metadata.yaml goes only after the other files of its bag were verified. */
  isMetadata: boolean;
}

/** Something in a named folder that is not uploaded, and why (printed by `upload`). */
export interface SkippedEntry {
  path: string;
  reason: string;
  /** A regular file that would have been uploaded but cannot be (its name): the upload is not complete without it. */
  counts: boolean;
}

export interface Listing {
  files: ListedFile[];
  skipped: SkippedEntry[];
}

/**
 * Expands a file or bag folder named by a person into files in upload order, with their server
 * paths. A folder keeps its own name and structure (`run1/run1_0.mcap`); a split or
 * metadata.yaml named alone keeps its bag folder (`run1/run1_3.mcap`); any other file keeps
 * its name. In a folder, bag files (and every other file when `allFiles`) are listed, splits in
 * index order, metadata.yaml last; temporaries (`.active`, `-wal`, hidden) never.
 *
 * Symbolic links: what the person named is resolved once (a link named on the command line is
 * followed: they asked for it), and its real name is the one used (`upload latest` where
 * `latest -> run5` uploads `run5/...`). Inside a folder no link is ever followed, nor a named pipe,
 * socket or device read: they are skipped, with the reason. The engine opens each listed file
 * without following a link anywhere in its path, so a link swapped in after the listing is not
 * followed either. `root`, when the path lies inside it, makes server paths relative to it as the
 * watcher does.
 */
export async function listUpload(input: string, options: { root?: string; allFiles?: boolean } = {}): Promise<Listing> {
  let absolute: string;
  let info: Stats;
  try {
    absolute = await realpath(path.resolve(input));
    info = await lstat(absolute);
  } catch (error) {
    throw new UploadError('LOCAL_FILE_NOT_FOUND', `No such file or folder: ${input}`, { cause: error });
  }
  const named = options.root;
  const root = named ? await realpath(named).catch(() => path.resolve(named)) : undefined;
  const base = root && (absolute + path.sep).startsWith(root + path.sep) ? root : undefined;
  if (info.isFile()) {
    const name = path.basename(absolute);
    const kind = classifyFile(name);
    const inBag = kind.role === 'metadata' || kind.role === 'split';
    const remotePath = base
      ? toPosix(path.relative(base, absolute))
      : inBag
        ? `${path.basename(path.dirname(absolute))}/${name}`
        : name;
    const unusable = notUtf8(remotePath);
    if (unusable) return { files: [], skipped: [{ path: absolute, reason: unusable, counts: true }] };
    return {
      files: [{ path: absolute, remotePath, bagName: bagNameOf(remotePath), isMetadata: kind.role === 'metadata' }],
      skipped: [],
    };
  }
  if (!info.isDirectory())
    throw new UploadError('UNSAFE_LOCAL_PATH', `Not a regular file or folder: ${input} is ${kindOf(info)}`);
  const prefix = base ? toPosix(path.relative(base, absolute)) : path.basename(absolute);
  const found: { rel: string; abs: string }[] = [];
  const skipped: SkippedEntry[] = [];
  await walk(absolute, '', found, skipped);
  const wanted = found.filter(({ rel }) => !isNeverUploaded(rel) && (options.allFiles || isBagFile(classifyFile(rel))));
  const keyed = wanted.map(({ rel, abs }) => ({ rel, abs, info: classifyFile(rel) }));
  keyed.sort((a, b) => {
    const rank = (x: typeof a): number => (x.info.role === 'metadata' ? 2 : x.info.role === 'split' ? 0 : 1);
    return (
      a.info.dir.localeCompare(b.info.dir) ||
      rank(a) - rank(b) ||
      (a.info.stem ?? '').localeCompare(b.info.stem ?? '') ||
      (a.info.index ?? 0) - (b.info.index ?? 0) ||
      a.rel.localeCompare(b.rel)
    );
  });
  const files: ListedFile[] = [];
  for (const { rel, abs, info: kind } of keyed) {
    const remotePath = prefix ? `${prefix}/${rel}` : rel;
    const unusable = notUtf8(remotePath);
    if (unusable) skipped.push({ path: abs, reason: unusable, counts: true });
    else files.push({ path: abs, remotePath, bagName: bagNameOf(remotePath), isMetadata: kind.role === 'metadata' });
  }
  return { files, skipped };
}

/** The files of `listUpload` (what is skipped is left out). */
export async function listForUpload(
  input: string,
  options: { root?: string; allFiles?: boolean } = {},
): Promise<ListedFile[]> {
  return (await listUpload(input, options)).files;
}

async function walk(
  dir: string,
  rel: string,
  out: { rel: string; abs: string }[],
  skipped: SkippedEntry[],
): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new UploadError('FILE_UNREADABLE', `Cannot read folder ${dir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  for (const entry of entries) {
    const childRel = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.name.startsWith('.')) continue;
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(abs, childRel, out, skipped);
    else if (entry.isFile()) out.push({ rel: childRel, abs });
    else if (entry.isSymbolicLink())
      skipped.push({ path: abs, reason: 'a symbolic link (links inside a folder are never followed)', counts: false });
    else if (!isNeverUploaded(childRel))
      skipped.push({ path: abs, reason: 'not a regular file (a named pipe, socket or device)', counts: false });
  }
}

/**
 * A name that is not valid UTF-8 cannot even be opened by the name read back: skipped with the
 * reason. A name the path rule refuses (a control or invisible character) is listed: the agent
 * holds it back with the rule's reason, and its bag's metadata.yaml with it.
 */
function notUtf8(remotePath: string): string | undefined {
  return remotePath.includes('\uFFFD') ? unusableName(remotePath) : undefined;
}

/** Why the server could not store a file under this path, or undefined when it can. */
export function unusableName(remotePath: string): string | undefined {
  if (remotePath.includes('\uFFFD'))
    return (
      `its name ${JSON.stringify(remotePath)} is not valid UTF-8 (or holds U+FFFD): ` +
      'it cannot be uploaded; rename it'
    );
  try {
    normaliseRelativePath(remotePath, 'its path');
    return undefined;
  } catch (error) {
    return `its name ${JSON.stringify(remotePath)} cannot be uploaded: ${(error as Error).message}; rename it`;
  }
}

function toPosix(relative: string): string {
  return relative.split(path.sep).join('/');
}

function bagNameOf(remotePath: string): string {
  const dir = path.posix.dirname(remotePath);
  return dir === '.' ? '' : path.posix.basename(dir);
}
