import { createMD5, createSHA256, type IHasher } from 'hash-wasm';
import type { HashFork, PrefixHash, SavedPrefix } from './prefix-hash.js';

interface SavedFork extends HashFork {
  readonly startBytes: number;
  readonly sha256: IHasher;
  readonly md5: IHasher | undefined;
}

/**
 * The prefix hash of server replicas (see prefix-hash.ts): hash-wasm's SHA-256 and MD5, whose
 * state (116 and 156 bytes) can be saved after a chunk and loaded by another process, so
 * whichever replica receives the next in-order chunk continues the hash; the database holds it
 * (the session store's `savePrefix`). Node's crypto cannot export its state. The price, measured
 * on the development machine (SHA instructions): 2.6 s of CPU per GiB instead of 0.7 s
 * (docs/scaling-out.md).
 */
export class SavedPrefixHash implements PrefixHash {
  #state: SavedPrefix;
  #generation = 0;
  readonly #initial: SavedPrefix;

  private constructor(state: SavedPrefix, initial: SavedPrefix) {
    this.#state = state;
    this.#initial = initial;
  }

  /** A hash at `saved`, or at the empty prefix. */
  static async load(withMd5: boolean, saved: SavedPrefix | undefined): Promise<SavedPrefixHash> {
    const sha256 = await createSHA256();
    sha256.init();
    const md5 = withMd5 ? await createMD5() : undefined;
    md5?.init();
    const initial: SavedPrefix = { chunks: 0, bytes: 0, sha256: sha256.save(), md5: md5?.save() ?? null };
    return new SavedPrefixHash(saved ?? initial, initial);
  }

  get chunks(): number {
    return this.#state.chunks;
  }

  get bytes(): number {
    return this.#state.bytes;
  }

  get generation(): number {
    return this.#generation;
  }

  fork(): Promise<HashFork> {
    const state = this.#state;
    return savedFork(state.chunks, state.bytes, this.#generation, state.sha256, state.md5);
  }

  forkAfter(fork: HashFork, length: number): Promise<HashFork> {
    const { sha256, md5, startBytes } = fork as SavedFork;
    return savedFork(fork.chunkIndex + 1, startBytes + length, fork.generation, sha256.save(), md5?.save() ?? null);
  }

  adopt(fork: HashFork, length: number, count = 1): boolean {
    if (fork.generation !== this.#generation || fork.chunkIndex !== this.#state.chunks) return false;
    this.#state = this.savedAfter(fork, length, count);
    return true;
  }

  async digest(): Promise<{ sha256: string; md5: string | undefined }> {
    const state = this.#state;
    const sha256 = (await loaded(createSHA256, state.sha256)).digest('hex');
    const md5 = state.md5 ? (await loaded(createMD5, state.md5)).digest('hex') : undefined;
    return { sha256, md5 };
  }

  reset(): void {
    this.#state = this.#initial;
    this.#generation += 1;
  }

  savedAfter(fork: HashFork, length: number, count = 1): SavedPrefix {
    const { sha256, md5, startBytes } = fork as SavedFork;
    return {
      chunks: fork.chunkIndex + count,
      bytes: startBytes + length,
      sha256: sha256.save(),
      md5: md5?.save() ?? null,
    };
  }

  saved(): SavedPrefix {
    return this.#state;
  }
}

async function savedFork(
  chunkIndex: number,
  startBytes: number,
  generation: number,
  sha256State: Uint8Array,
  md5State: Uint8Array | null,
): Promise<SavedFork> {
  const sha256 = await loaded(createSHA256, sha256State);
  const md5 = md5State ? await loaded(createMD5, md5State) : undefined;
  return {
    chunkIndex,
    startBytes,
    generation,
    sha256,
    md5,
    hashes: md5 ? [sha256, md5] : [sha256],
    sha256Hex: () => {
      // hash-wasm's digest ends its state: save it first and load it back.
      const saved = sha256.save();
      const hex = sha256.digest('hex');
      sha256.load(saved);
      return hex;
    },
  };
}

async function loaded(create: () => Promise<IHasher>, state: Uint8Array): Promise<IHasher> {
  const hasher = await create();
  hasher.load(state);
  return hasher;
}
