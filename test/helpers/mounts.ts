import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Real file systems for tests that need their own: a loop-mounted ext4 image (power loss is
 * simulated by copying the image while it is mounted) and a small tmpfs (a disk that really
 * fills up). Both need root (mount(2)) and, for the image, mkfs.ext4 and a free loop device.
 *
 * Where they cannot be had, `mountsUnavailable()` says why. Such tests fail with that reason in
 * CI (CI=true: `.ci/run` runs as root on a machine with loop devices), and are skipped with the
 * reason printed elsewhere (a developer's machine without root); see docs/server.md.
 */
let probed: Promise<string | undefined> | undefined;

/** Undefined when mounts work here; otherwise what is missing and how to get it. */
export function mountsUnavailable(): Promise<string | undefined> {
  probed ??= probe();
  return probed;
}

/** True when a test needing mounts must be skipped (not in CI, and mounts are unavailable); prints the reason once. */
export async function skipWithoutMounts(what: string): Promise<boolean> {
  const reason = await mountsUnavailable();
  if (reason === undefined || process.env.CI) return false;
  process.stderr.write(`SKIPPED ${what}: ${reason}\n`);
  return true;
}

/** Throws the reason mounts are unavailable (in CI the test then fails loudly instead of being skipped). */
export async function requireMounts(): Promise<void> {
  const reason = await mountsUnavailable();
  if (reason !== undefined) throw new Error(`This test needs real mounts, which are unavailable here: ${reason}`);
}

async function probe(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `mounts are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'it must run as root (mount(2)); run the suite as root, as .ci/run does in CI';
  const dir = path.join(os.tmpdir(), `mount-probe-${process.pid}`);
  await mkdir(dir, { recursive: true });
  try {
    const image = path.join(dir, 'probe.img');
    await makeExt4Image(image, 8);
    const point = path.join(dir, 'mnt');
    await mkdir(point);
    await mount(image, point, ['loop']);
    await unmount(point);
    await mountTmpfs(point, 1024 * 1024);
    await unmount(point);
    return undefined;
  } catch (error) {
    return (
      `a loop-mounted ext4 image or a tmpfs cannot be mounted (${(error as Error).message.split('\n')[0]}); ` +
      `it needs root, mkfs.ext4 (e2fsprogs) and a free loop device (/dev/loop-control)`
    );
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A sparse file of `mib` MiB holding a fresh ext4 file system. */
export async function makeExt4Image(image: string, mib: number): Promise<void> {
  await writeFile(image, '');
  await run('truncate', ['-s', `${mib}M`, image]);
  await run('mkfs.ext4', ['-q', '-F', image]);
}

/** `mount -o <options> image point` (options such as `loop`, `commit=600`). */
export async function mount(image: string, point: string, options: string[]): Promise<void> {
  await run('mount', ['-o', options.join(','), image, point]);
}

/** A tmpfs of `bytes` bytes at `point`. */
export async function mountTmpfs(point: string, bytes: number): Promise<void> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', point]);
}

/**
 * Unmounts `point` (a loop device set up by mount -o loop is detached with it). A process that
 * was just killed may still hold files open for a moment: retried while the mount is busy.
 */
export async function unmount(point: string): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await run('umount', [point]);
      return;
    } catch (error) {
      const text = `${(error as { stderr?: string }).stderr ?? ''}`;
      if (/not mounted|no mount point/i.test(text)) return;
      if (attempt >= 50 || !/busy/i.test(text)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** `cp --sparse=always`: a copy of an image as it is on its device now. */
export async function copyImage(from: string, to: string): Promise<void> {
  await run('cp', ['--sparse=always', from, to]);
}
