import type { Dirent, Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { classifyFile, isBagFile, isNeverUploaded } from './bag-files.js';

/** One file of an explicit upload (`upload <path>...`, the ROS enqueue service). */
export interface ListedFile {
  path: string;
  remotePath: string;
  bagName: string;
  /** metadata.yaml goes only after the other files of its bag were verified. */
  isMetadata: boolean;
}

/**
 * Expands a file or bag folder named by a person into files in upload order, with their server
 * paths. A folder keeps its own name and structure (`run1/run1_0.mcap`); a split or
 * metadata.yaml named alone keeps its bag folder (`run1/run1_3.mcap`); any other file keeps
 * its name. In a folder, bag files (and every other file when `allFiles`) are listed, splits in
 * index order, metadata.yaml last; temporaries (`.active`, `-wal`, hidden) never.
 * `root`, when the path lies inside it, makes server paths relative to it as the watcher does.
 */
export async function listForUpload(
  input: string,
  options: { root?: string; allFiles?: boolean } = {},
): Promise<ListedFile[]> {
  const absolute = path.resolve(input);
  let info: Stats;
  try {
    info = await stat(absolute);
  } catch (error) {
    throw new UploadError('LOCAL_FILE_NOT_FOUND', `No such file or folder: ${input}`, { cause: error });
  }
  const base =
    options.root && (absolute + path.sep).startsWith(path.resolve(options.root) + path.sep)
      ? path.resolve(options.root)
      : undefined;
  if (info.isFile()) {
    const name = path.basename(absolute);
    const kind = classifyFile(name);
    const inBag = kind.role === 'metadata' || kind.role === 'split';
    const remotePath = base
      ? toPosix(path.relative(base, absolute))
      : inBag
        ? `${path.basename(path.dirname(absolute))}/${name}`
        : name;
    return [{ path: absolute, remotePath, bagName: bagNameOf(remotePath), isMetadata: kind.role === 'metadata' }];
  }
  if (!info.isDirectory()) throw new UploadError('FILE_UNREADABLE', `Not a regular file or folder: ${input}`);
  const prefix = base ? toPosix(path.relative(base, absolute)) : path.basename(absolute);
  const found: { rel: string; abs: string }[] = [];
  await walk(absolute, '', found);
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
  return keyed.map(({ rel, abs, info: kind }) => {
    const remotePath = prefix ? `${prefix}/${rel}` : rel;
    return { path: abs, remotePath, bagName: bagNameOf(remotePath), isMetadata: kind.role === 'metadata' };
  });
}

async function walk(dir: string, rel: string, out: { rel: string; abs: string }[]): Promise<void> {
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
    if (entry.isDirectory()) await walk(path.join(dir, entry.name), childRel, out);
    else if (entry.isFile()) out.push({ rel: childRel, abs: path.join(dir, entry.name) });
  }
}

function toPosix(relative: string): string {
  return relative.split(path.sep).join('/');
}

function bagNameOf(remotePath: string): string {
  const dir = path.posix.dirname(remotePath);
  return dir === '.' ? '' : path.posix.basename(dir);
}
