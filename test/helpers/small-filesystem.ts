import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * A real, small file system for tests that need a disk to fill up: a tmpfs of `size` bytes
 * mounted on `dir` (as root). Where it cannot be mounted (not root, no CAP_SYS_ADMIN), `mount`
 * throws: CI (CI=true) must fail loudly then, and a test outside CI may skip with the reason.
 */
export interface SmallFilesystem {
  readonly dir: string;
  /** Free bytes now (statfs). */
  free(): number;
  /** Fills it up with a filler file until the kernel says ENOSPC; returns the bytes written. */
  fill(): number;
  /** Deletes the filler: the space is back. */
  release(): void;
  unmount(): Promise<void>;
}

export async function mountSmallFilesystem(dir: string, size: number): Promise<SmallFilesystem> {
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  const filler = path.join(dir, '.filler');
  return {
    dir,
    free() {
      const stats = statfsSync(dir);
      return stats.bavail * stats.bsize;
    },
    fill() {
      const fd = openSync(filler, 'a');
      const block = Buffer.alloc(4096, 0x5a);
      let written = 0;
      try {
        for (;;) written += writeSync(fd, block);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
      return written;
    },
    release() {
      rmSync(filler, { force: true });
    },
    async unmount() {
      // Lazy: a process that still holds a file there (a killed child's last moments) cannot block it.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    },
  };
}

/** Why a mount is impossible here, or undefined when it works (tried on a scratch folder). */
export async function mountProblem(scratch: string): Promise<string | undefined> {
  try {
    const fs = await mountSmallFilesystem(scratch, 1024 * 1024);
    await fs.unmount();
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr || (error as Error).message;
  }
}

/**
 * Makes `dir` read-only in place (a read-only bind mount of itself), so that even root cannot
 * unlink or rename in it (EROFS); returns what undoes it.
 */
export function makeReadOnly(dir: string): () => void {
  execFileSync('mount', ['--bind', dir, dir], { stdio: 'pipe' });
  try {
    execFileSync('mount', ['-o', 'remount,bind,ro', dir], { stdio: 'pipe' });
  } catch (error) {
    execFileSync('umount', [dir], { stdio: 'pipe' });
    throw error;
  }
  let undone = false;
  return () => {
    if (undone) return;
    undone = true;
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  };
}
