import { createHash, type Hash } from 'node:crypto';

/** Anything bytes can be fed to: Node's Hash, hash-wasm's hasher. */
export interface RunningHash {
  update(data: Uint8Array): unknown;
}

/** Copies of a prefix hash's state, fed while one chunk streams in; adopted only if the chunk verifies. */
export interface HashFork {
  readonly chunkIndex: number;
  readonly generation: number;
  /** The hashes to feed (SHA-256, then MD5 for the legacy API), for ChunkVerifier. */
  readonly hashes: RunningHash[];
  /** The hex SHA-256 of the prefix through the bytes fed so far; the fork stays usable. */
  sha256Hex(): string;
}

/**
 * A prefix hash's state as a database keeps it, so that whichever server process receives the
 * next chunk continues the hash (saved-prefix-hash.ts).
 */
export interface SavedPrefix {
  chunks: number;
  bytes: number;
  sha256: Uint8Array;
  /** The legacy API's running MD5; null for native sessions. */
  md5: Uint8Array | null;
}

/**
 * The running SHA-256 (and, for the legacy API, MD5) of a session's verified contiguous prefix:
 * chunks 0..chunks-1, `bytes` long. It is what makes completing a file sent in order cheap:
 * only the digest is left to compute. Bad bytes never enter it, because each chunk is hashed
 * into a fork that is adopted only after the chunk verified. `reset()` starts over (after a
 * restart the state is rebuilt from disk; after a failed completion it is dropped).
 *
 * Two implementations: NodePrefixHash (Node's crypto, SHA instructions where the CPU has them;
 * its state never leaves the process) for one server process, and SavedPrefixHash (hash-wasm,
 * whose state can be saved and loaded) for server replicas that share it through the database.
 */
export interface PrefixHash {
  /** Number of leading chunks hashed. */
  readonly chunks: number;
  readonly bytes: number;
  readonly generation: number;
  /** A fork to feed with the next chunk(s); its position is taken when called, before it resolves. */
  fork(): Promise<HashFork>;
  /**
   * A fork at the chunk after `fork`'s, from a copy of its state once fed with its chunk's
   * `length` bytes: the next chunk streams in while that one is still being acknowledged. It can
   * only be adopted after `fork` was (adopt checks the position).
   */
  forkAfter(fork: HashFork, length: number): Promise<HashFork>;
  /** Adopts a fork fed with exactly the next `count` chunks' `length` bytes; false when the state moved on. */
  adopt(fork: HashFork, length: number, count?: number): boolean;
  /** Hex digests of the prefix so far; the running state is kept. */
  digest(): Promise<{ sha256: string; md5: string | undefined }>;
  reset(): void;
  /** The state `adopt(fork, length, count)` would lead to, to save first; undefined when this hash cannot be saved. */
  savedAfter(fork: HashFork, length: number, count?: number): SavedPrefix | undefined;
  /** The current state, to save; undefined when this hash cannot be saved. */
  saved(): SavedPrefix | undefined;
}

interface NodeFork extends HashFork {
  readonly sha256: Hash;
  readonly md5: Hash | undefined;
}

/** The prefix hash of one server process (Node's crypto). */
export class NodePrefixHash implements PrefixHash {
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

  get chunks(): number {
    return this.#chunks;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get generation(): number {
    return this.#generation;
  }

  fork(): Promise<HashFork> {
    return Promise.resolve(nodeFork(this.#chunks, this.#generation, this.#sha256.copy(), this.#md5?.copy()));
  }

  forkAfter(fork: HashFork, _length: number): Promise<HashFork> {
    const { sha256, md5 } = fork as NodeFork;
    return Promise.resolve(nodeFork(fork.chunkIndex + 1, fork.generation, sha256.copy(), md5?.copy()));
  }

  adopt(fork: HashFork, length: number, count = 1): boolean {
    if (fork.generation !== this.#generation || fork.chunkIndex !== this.#chunks) return false;
    this.#sha256 = (fork as NodeFork).sha256;
    this.#md5 = (fork as NodeFork).md5;
    this.#chunks += count;
    this.#bytes += length;
    return true;
  }

  digest(): Promise<{ sha256: string; md5: string | undefined }> {
    return Promise.resolve({ sha256: this.#sha256.copy().digest('hex'), md5: this.#md5?.copy().digest('hex') });
  }

  reset(): void {
    this.#sha256 = createHash('sha256');
    this.#md5 = this.#withMd5 ? createHash('md5') : undefined;
    this.#chunks = 0;
    this.#bytes = 0;
    this.#generation += 1;
  }

  savedAfter(): undefined {
    return undefined;
  }

  saved(): undefined {
    return undefined;
  }
}

function nodeFork(chunkIndex: number, generation: number, sha256: Hash, md5: Hash | undefined): NodeFork {
  return {
    chunkIndex,
    generation,
    sha256,
    md5,
    hashes: md5 ? [sha256, md5] : [sha256],
    sha256Hex: () => sha256.copy().digest('hex'),
  };
}
