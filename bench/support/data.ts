import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeRandomFile } from '../../test/helpers/random-file.js';
import { MiB } from './units.js';

export { writeRandomFile };

/** Writes `count` files of `size` random bytes named `<prefix>NNNN.bin` into `folder`. */
export async function writeSmallFiles(
  folder: string,
  count: number,
  size: number,
  prefix = 'file-',
): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const names: string[] = [];
  const width = String(count - 1).length;
  for (let i = 0; i < count; i += 1) {
    const file = path.join(folder, `${prefix}${String(i).padStart(width, '0')}.bin`);
    await writeFile(file, randomBytes(size));
    names.push(file);
  }
  return names;
}

/** SHA-256 of a file streamed from disk with 1 MiB reads, on this process's one core: MiB/s and the digest. */
export async function sha256Rate(file: string, size: number): Promise<{ mibps: number; sha256: string; ms: number }> {
  const hash = createHash('sha256');
  const start = performance.now();
  for await (const piece of createReadStream(file, { highWaterMark: MiB })) hash.update(piece as Buffer);
  const sha256 = hash.digest('hex');
  const ms = performance.now() - start;
  return { mibps: size / MiB / (ms / 1000), sha256, ms };
}

/**
 * Writes dirty pages to disk (`sync`), so that one measurement does not pay for the previous
 * one's writeback.
 */
export function flushDisks(): void {
  try {
    execFileSync('sync');
  } catch {
    // not available: measurements only get noisier
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
