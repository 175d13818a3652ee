import { createHash, type Hash } from 'node:crypto';

/**
 * The whole file's SHA-256, computed while sending so the file is read once in the normal case.
 * It holds the hash of the prefix the server acknowledged. A chunk is hashed into a `fork()` (a
 * copy of the running state) as it is read; the fork is `adopt`ed only once the server
 * acknowledged that chunk, so a retried chunk is never hashed twice.
 */
export class RunningHash {
  #hash: Hash = createHash('sha256');
  #bytes = 0;

  /** Bytes hashed into the adopted state. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A copy of the current state to hash the next chunk into. */
  fork(): Hash {
    return this.#hash.copy();
  }

  /** Makes a fork (which covers `bytes` more bytes) the current state. */
  adopt(fork: Hash, bytes: number): void {
    this.#hash = fork;
    this.#bytes += bytes;
  }

  /** Hashes bytes directly into the current state (local re-reads on resume). */
  update(data: Uint8Array): void {
    this.#hash.update(data);
    this.#bytes += data.byteLength;
  }

  /** The hex digest. The running state stays usable (a copy is finalised). */
  digest(): string {
    return this.#hash.copy().digest('hex');
  }
}
