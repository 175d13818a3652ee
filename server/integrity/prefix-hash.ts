import { createHash, type Hash } from 'node:crypto';

/** Copies of a prefix hash's state, fed while one chunk streams in; adopted only if the chunk verifies. */
export interface HashFork {
  readonly chunkIndex: number;
  readonly generation: number;
  readonly sha256: Hash;
  readonly md5: Hash | undefined;
  /** The hashes to feed, for ChunkVerifier. */
  readonly hashes: Hash[];
}

/**
 * The running SHA-256 (and, for the legacy API, MD5) of a session's verified contiguous prefix:
 * chunks 0..chunks-1, `bytes` long. It is what makes completing a file sent in order cheap:
 * only the digest is left to compute. Bad bytes never enter it, because each chunk is hashed
 * into a fork (`hash.copy()`) that is adopted only after the chunk verified. `reset()` starts
 * over (after a restart the state is rebuilt from disk; after a failed completion it is dropped).
 */
export class PrefixHash {
  readonly #withMd5: boolean;
  #sha256: Hash;
  #md5: Hash | undefined;
  #chunks = 0;
  #bytes = 0;
  #generation = 0;

  constructor(withMd5: boolean) {
    this.#withMd5 = withMd5;
    this.#sha256 = createHash('sha256');
    this.#md5 = withMd5 ? createHash('md5') : undefined;
  }

  /** Number of leading chunks hashed. */
  get chunks(): number {
    return this.#chunks;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get generation(): number {
    return this.#generation;
  }

  /** A fork to feed with chunk `chunks` (the next one). */
  fork(): HashFork {
    const sha256 = this.#sha256.copy();
    const md5 = this.#md5?.copy();
    return {
      chunkIndex: this.#chunks,
      generation: this.#generation,
      sha256,
      md5,
      hashes: md5 ? [sha256, md5] : [sha256],
    };
  }

  /** Adopts a fork fed with exactly the next chunk's `length` bytes; false when the state moved on meanwhile. */
  adopt(fork: HashFork, length: number): boolean {
    if (fork.generation !== this.#generation || fork.chunkIndex !== this.#chunks) return false;
    this.#sha256 = fork.sha256;
    this.#md5 = fork.md5;
    this.#chunks += 1;
    this.#bytes += length;
    return true;
  }

  /** Hex digests of the prefix so far; the running state is kept. */
  digest(): { sha256: string; md5: string | undefined } {
    return { sha256: this.#sha256.copy().digest('hex'), md5: this.#md5?.copy().digest('hex') };
  }

  reset(): void {
    this.#sha256 = createHash('sha256');
    this.#md5 = this.#withMd5 ? createHash('md5') : undefined;
    this.#chunks = 0;
    this.#bytes = 0;
    this.#generation += 1;
  }
}
