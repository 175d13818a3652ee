import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headers } from '../../common/protocol/native-protocol.js';

/**
 * A file of two whole chunks and a `tail` of bytes written in `dir`: its chunks, and the SHA-256
 * of the file through each chunk (what a client sends as X-Chunk-Prefix-Sha256).
 */
export async function threeChunkFile(
  dir: string,
  name: string,
  chunkSize: number,
  tail: number,
): Promise<{ file: string; chunks: Buffer[]; prefixes: string[] }> {
  const data = randomBytes(2 * chunkSize + tail);
  const file = path.join(dir, name);
  await writeFile(file, data);
  const chunks = [0, 1, 2].map((i) => data.subarray(i * chunkSize, (i + 1) * chunkSize));
  const prefixes = chunks.map((_, i) =>
    createHash('sha256')
      .update(data.subarray(0, Math.min(data.length, (i + 1) * chunkSize)))
      .digest('hex'),
  );
  return { file, chunks, prefixes };
}

/** Request options carrying a chunk's prefix digest. */
export function withPrefix(sha256: string): { headers: Record<string, string> } {
  return { headers: { [headers.chunkPrefixSha256]: sha256 } };
}
