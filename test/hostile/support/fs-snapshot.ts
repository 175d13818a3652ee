import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * What a folder tree holds, entry by entry (without following symlinks): to prove that nothing
 * appeared or changed outside the storage root.
 */
export type TreeSnapshot = Map<string, string>;

export async function snapshotTree(root: string, exclude: readonly string[]): Promise<TreeSnapshot> {
  const result: TreeSnapshot = new Map();
  const skip = new Set(exclude.map((p) => path.resolve(p)));
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const full = path.join(dir, name);
      if (skip.has(full)) continue;
      const info = await lstat(full);
      const kind = info.isSymbolicLink()
        ? `link->${await readlink(full)}`
        : info.isDirectory()
          ? 'dir'
          : `file:${info.size}:${info.mtimeMs}:${info.mode}`;
      result.set(path.relative(root, full), kind);
      if (info.isDirectory()) await walk(full);
    }
  };
  await walk(root);
  return result;
}

/** Entries added, removed or changed between two snapshots, described one per line. */
export function diffSnapshots(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const changes: string[] = [];
  for (const [entry, kind] of after) {
    const old = before.get(entry);
    if (old === undefined) changes.push(`new: ${entry} (${kind})`);
    else if (old !== kind) changes.push(`changed: ${entry} (${old} → ${kind})`);
  }
  for (const entry of before.keys()) if (!after.has(entry)) changes.push(`removed: ${entry}`);
  return changes;
}

/** Top-level entries of `folders` whose names contain `mark` (folders that cannot be read are skipped). */
export async function findMarked(folders: readonly string[], mark: string): Promise<string[]> {
  const found: string[] = [];
  for (const folder of folders) {
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      continue;
    }
    for (const name of names) if (name.includes(mark)) found.push(path.join(folder, name));
  }
  return found;
}
