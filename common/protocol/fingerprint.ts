import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Bytes read from each end of the file. */
export const FINGERPRINT_SAMPLE = 1024 * 1024;

/**
 * A cheap content fingerprint: `fp1:` + SHA-256 of the size and of the first and last MiB (the
 * whole file when it is at most 2 MiB). It lets a client that lost its state find its session
 * again, and tells "same file" from "different file at the same path" without reading 5 GB.
 * It is a hint, never proof: a file is done only once its full SHA-256 is verified.
 */
export async function fingerprintFile(filePath: string, size?: number): Promise<string> {
  const handle = await open(filePath, 'r');
  try {
    const length = size ?? (await handle.stat()).size;
    const samples: Buffer[] = [];
    for (const [position, count] of fingerprintRanges(length)) {
      const buffer = Buffer.allocUnsafe(count);
      let done = 0;
      while (done < count) {
        const { bytesRead } = await handle.read(buffer, done, count - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      samples.push(buffer.subarray(0, done));
    }
    return fingerprintOf(length, samples);
  } finally {
    await handle.close();
  }
}

/** The byte ranges `[position, length]` a fingerprint reads from a file of `size` bytes. */
export function fingerprintRanges(size: number): [number, number][] {
  return size <= 2 * FINGERPRINT_SAMPLE
    ? [[0, size]]
    : [
        [0, FINGERPRINT_SAMPLE],
        [size - FINGERPRINT_SAMPLE, FINGERPRINT_SAMPLE],
      ];
}

/**
 * The fingerprint of a file of `size` bytes whose `fingerprintRanges` hold `samples` (for readers
 * other than a local path).
 */
export function fingerprintOf(size: number, samples: readonly Uint8Array[]): string {
  const hash = startFingerprint(size);
  for (const sample of samples) hash.update(sample);
  return finishFingerprint(hash);
}

/** A fingerprint hash over the size, ready for the `fingerprintRanges` bytes (for streaming readers). */
export function startFingerprint(size: number): Hash {
  const header = Buffer.alloc(8);
  header.writeBigUInt64BE(BigInt(size));
  return createHash('sha256').update(header);
}

/** The `fp1:` fingerprint of a hash started by `startFingerprint` and fed its ranges. */
export function finishFingerprint(hash: Hash): string {
  return `fp1:${hash.digest('hex')}`;
}

export function isFingerprint(value: unknown): value is string {
  return typeof value === 'string' && /^fp1:[0-9a-f]{64}$/.test(value);
}
