import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

/**
 * Optional gzip on the wire (`Content-Encoding: gzip`; the chunk's CRC covers the decoded bytes,
 * which the server verifies after decoding). Off by default; when on, it is used only when it
 * pays:
 * - never for files that are already compressed (by extension);
 * - the first chunk sent decides for the whole file: if gzip shrinks it by less than
 *   `MIN_SAVING`, the file goes as it is;
 * - a later chunk that does not shrink at all goes as it is too.
 * Level 1: on a robot the CPU is better spent on the link than on the last few percent.
 */
export const INCOMPRESSIBLE_EXTENSIONS: readonly string[] = ['.zst', '.zstd', '.gz', '.bz2', '.xz', '.lz4'];
export const MIN_SAVING = 0.1;
const LEVEL = 1;

const gzip = promisify(zlib.gzip);

export function isPrecompressed(filePath: string): boolean {
  return INCOMPRESSIBLE_EXTENSIONS.includes(path.extname(filePath).toLowerCase());
}

export interface EncodedChunk {
  body: Buffer;
  encoding: 'gzip' | 'identity';
}

/** One file's compression decision. */
export class TransferCompression {
  #state: 'undecided' | 'on' | 'off';

  constructor(enabled: boolean, filePath: string) {
    this.#state = enabled && !isPrecompressed(filePath) ? 'undecided' : 'off';
  }

  get state(): 'undecided' | 'on' | 'off' {
    return this.#state;
  }

  /** The bytes to put on the wire for one chunk (runs gzip off the main thread). */
  async encode(raw: Buffer): Promise<EncodedChunk> {
    if (this.#state === 'off' || raw.length === 0) return { body: raw, encoding: 'identity' };
    const packed = await gzip(raw, { level: LEVEL });
    if (this.#state === 'undecided') {
      this.#state = packed.length <= raw.length * (1 - MIN_SAVING) ? 'on' : 'off';
      if (this.#state === 'off') return { body: raw, encoding: 'identity' };
    }
    return packed.length < raw.length ? { body: packed, encoding: 'gzip' } : { body: raw, encoding: 'identity' };
  }
}
