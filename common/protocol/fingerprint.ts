import { createHash } from 'node:crypto';
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
    const hash = createHash('sha256');
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(length));
    hash.update(header);
    const ranges: [number, number][] =
      length <= 2 * FINGERPRINT_SAMPLE ? [[0, length]] : [[0, FINGERPRINT_SAMPLE], [length - FINGERPRINT_SAMPLE, FINGERPRINT_SAMPLE]];
    for (const [position, count] of ranges) {
      const buffer = Buffer.allocUnsafe(count);
      let done = 0;
      while (done < count) {
        const { bytesRead } = await handle.read(buffer, done, count - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      hash.update(buffer.subarray(0, done));
    }
    return `fp1:${hash.digest('hex')}`;
  } finally {
    await handle.close();
  }
}

export function isFingerprint(value: unknown): value is string {
  return typeof value === 'string' && /^fp1:[0-9a-f]{64}$/.test(value);
}
