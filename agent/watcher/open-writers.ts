import { readdir, readFile, readlink } from 'node:fs/promises';

export interface OpenWriterScan {
  /** Paths (as given) that some process holds open with write access. */
  held: Map<string, number>;
  /**
   * False when the answer may be incomplete: no /proc (not Linux), or some processes' fd
   * tables were unreadable (other users' processes, without root).
   */
  complete: boolean;
}

const O_ACCMODE = 0o3;

/**
 * Which of `paths` (absolute, symlinks resolved) a process holds open for writing, from
 * /proc/<pid>/fd links and the access mode in /proc/<pid>/fdinfo/<fd>. One pass over /proc for
 * the whole set, so confirming a backlog of files costs one scan. Readers (the agent's own
 * upload streams) do not count.
 */
export async function scanOpenWriters(paths: Iterable<string>, procRoot = '/proc'): Promise<OpenWriterScan> {
  const wanted = new Set(paths);
  const held = new Map<string, number>();
  if (wanted.size === 0) return { held, complete: true };
  let pids: string[];
  try {
    pids = (await readdir(procRoot)).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return { held, complete: false };
  }
  let complete = true;
  await Promise.all(
    pids.map(async (pid) => {
      let fds: string[];
      try {
        fds = await readdir(`${procRoot}/${pid}/fd`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') complete = false;
        return;
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = await readlink(`${procRoot}/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        if (!wanted.has(target)) continue;
        try {
          const info = await readFile(`${procRoot}/${pid}/fdinfo/${fd}`, 'utf8');
          const flags = /^flags:\s*([0-7]+)/m.exec(info)?.[1];
          if (flags === undefined || (Number.parseInt(flags, 8) & O_ACCMODE) !== 0) held.set(target, Number(pid));
        } catch {
          // The fd was closed between the two reads.
        }
      }
    }),
  );
  return { held, complete };
}
