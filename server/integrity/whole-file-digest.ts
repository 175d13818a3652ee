import { createHash, type Hash } from 'node:crypto';
import type { UploadError } from '../../common/errors/upload-error.js';
import { finishFingerprint, fingerprintRanges, startFingerprint } from '../../common/protocol/fingerprint.js';

/**
 * Sits between a whole-file upload's (decoded) body and the disk: counts the bytes, refuses a
 * body over `maxLength` as soon as it is (a gzip bomb never reaches the disk beyond the limit),
 * hashes SHA-256 and, when the size is known up front, the content fingerprint (size, first and
 * last MiB; see common/protocol/fingerprint.ts), all in the one pass over the body.
 */
export class WholeFileDigest {
  readonly #maxLength: number;
  readonly #tooLarge: (length: number) => UploadError;
  readonly #sha256 = createHash('sha256');
  readonly #fingerprint: { hash: Hash; ranges: [number, number][] } | undefined;
  #length = 0;

  /** `knownSize`: the size the body must have, when known (the fingerprint is then computed on the way). */
  constructor(maxLength: number, knownSize: number | undefined, tooLarge: (length: number) => UploadError) {
    this.#maxLength = maxLength;
    this.#tooLarge = tooLarge;
    if (knownSize !== undefined)
      this.#fingerprint = { hash: startFingerprint(knownSize), ranges: fingerprintRanges(knownSize) };
  }

  async *through(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    for await (const piece of source) {
      const start = this.#length;
      this.#length += piece.byteLength;
      if (this.#length > this.#maxLength) throw this.#tooLarge(this.#length);
      this.#sha256.update(piece);
      if (this.#fingerprint) {
        for (const [position, count] of this.#fingerprint.ranges) {
          const from = Math.max(position, start);
          const to = Math.min(position + count, this.#length);
          if (from < to) this.#fingerprint.hash.update(piece.subarray(from - start, to - start));
        }
      }
      yield piece;
    }
  }

  get length(): number {
    return this.#length;
  }

  /** The hex SHA-256 of everything that went through; call once, after the body ended. */
  sha256(): string {
    return this.#sha256.digest('hex');
  }

  /** The fingerprint (`fp1:...`) when the size was known up front and the body had it; else undefined. */
  fingerprint(): string | undefined {
    if (!this.#fingerprint) return undefined;
    return finishFingerprint(this.#fingerprint.hash);
  }
}
