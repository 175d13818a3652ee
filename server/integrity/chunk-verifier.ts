import type { Hash } from 'node:crypto';
import { UploadError } from '../../common/errors/upload-error.js';
import { Crc32 } from '../../common/protocol/chunk-checksum.js';

/**
 * Sits between a chunk's body and the storage: counts the bytes, computes their CRC-32 and feeds
 * optional running hashes (forks of the file's prefix hash, see prefix-hash.ts), streaming. It
 * refuses a body longer than `maxLength` as soon as it is, so a gzip bomb or an over-long body
 * never reaches the disk beyond the chunk. Whether the CRC matches is decided by the caller
 * once the body ended; nothing is acknowledged before that.
 */
export class ChunkVerifier {
  readonly #maxLength: number;
  readonly #hashes: readonly Hash[];
  readonly #crc = new Crc32();
  #length = 0;

  constructor(maxLength: number, hashes: readonly Hash[] = []) {
    this.#maxLength = maxLength;
    this.#hashes = hashes;
  }

  async *through(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    for await (const piece of source) {
      this.#length += piece.byteLength;
      if (this.#length > this.#maxLength) {
        throw new UploadError(
          'CHUNK_SIZE_MISMATCH',
          `the chunk body is longer than the ${this.#maxLength} bytes expected`,
        );
      }
      this.#crc.update(piece);
      for (const hash of this.#hashes) hash.update(piece);
      yield piece;
    }
  }

  get length(): number {
    return this.#length;
  }

  get crc(): number {
    return this.#crc.value >>> 0;
  }
}
