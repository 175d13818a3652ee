import { createHash, type Hash } from 'node:crypto';

/**
 * The state of the whole-file digests at one point of the file: SHA-256 always, and MD5 too for
 * a server that only offers the legacy API (its finalize checks an MD5). Both are fed the same
 * bytes from the one read.
 */
export class FileDigests {
  readonly #sha256: Hash;
  readonly #md5: Hash | undefined;

  constructor(sha256: Hash, md5: Hash | undefined) {
    this.#sha256 = sha256;
    this.#md5 = md5;
  }

  update(data: Uint8Array): void {
    this.#sha256.update(data);
    this.#md5?.update(data);
  }

  copy(): FileDigests {
    return new FileDigests(this.#sha256.copy(), this.#md5?.copy());
  }

  /** The hex SHA-256 of a copy (this state stays usable). */
  sha256Hex(): string {
    return this.#sha256.copy().digest('hex');
  }

  /** Hex digests of a copy (this state stays usable). */
  digest(): { sha256: string; md5: string | undefined } {
    return { sha256: this.sha256Hex(), md5: this.#md5?.copy().digest('hex') };
  }
}

/**
 * The whole file's SHA-256 (and MD5 where asked), computed while sending so the file is read
 * once in the normal case. It holds the digests of the prefix the server acknowledged. A chunk
 * is hashed into a `fork()` (a copy of the running state) as it is read; the fork is `adopt`ed
 * only once the server acknowledged that chunk, so a retried chunk is never hashed twice.
 */
export class RunningHash {
  #state: FileDigests;
  #bytes = 0;

  /** `md5`: also compute the MD5 (the legacy API's finalize checks it). */
  constructor(md5 = false) {
    this.#state = new FileDigests(createHash('sha256'), md5 ? createHash('md5') : undefined);
  }

  /** Bytes hashed into the adopted state. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A copy of the current state to hash the next chunk into. */
  fork(): FileDigests {
    return this.#state.copy();
  }

  /** Makes a fork (which covers `bytes` more bytes) the current state. */
  adopt(fork: FileDigests, bytes: number): void {
    this.#state = fork;
    this.#bytes += bytes;
  }

  /** Hashes bytes directly into the current state (local re-reads on resume). */
  update(data: Uint8Array): void {
    this.#state.update(data);
    this.#bytes += data.byteLength;
  }

  /** The hex SHA-256. The running state stays usable (a copy is finalised). */
  digest(): string {
    return this.#state.sha256Hex();
  }

  /** The hex SHA-256 and, when asked for at construction, MD5. */
  digests(): { sha256: string; md5: string | undefined } {
    return this.#state.digest();
  }
}
