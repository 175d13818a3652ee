import { createHash, timingSafeEqual } from 'node:crypto';

/** The uploader name of requests without a token on an open server. */
export const ANONYMOUS = 'anonymous';

/** An uploader name is a folder under completed/: letters, digits, `.`, `_`, `-`. */
export const UPLOADER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface TokenEntry {
  uploader: string;
  token: string;
}

/**
 * Bearer tokens → uploader names. Only SHA-256 digests of the tokens are kept, and a lookup
 * compares the presented token's digest with every entry using crypto.timingSafeEqual, so
 * neither the time taken nor an early exit tells anything about the tokens.
 */
export class TokenTable {
  readonly #entries: { uploader: string; digest: Buffer }[];

  constructor(entries: readonly TokenEntry[]) {
    this.#entries = entries.map((entry) => ({ uploader: entry.uploader, digest: digest(entry.token) }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The names the tokens belong to, each once. */
  names(): string[] {
    return [...new Set(this.#entries.map((entry) => entry.uploader))];
  }

  /**
   * The SHA-256 digests of one name's tokens: keys for what is derived from a token (a viewer's
   * login cookie is signed with its token's digest, so a new token ends old logins).
   */
  digestsOf(name: string): Buffer[] {
    return this.#entries.filter((entry) => entry.uploader === name).map((entry) => entry.digest);
  }

  /** The uploader of a token, or undefined. */
  lookup(token: string): string | undefined {
    const presented = digest(token);
    let found: string | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(presented, entry.digest) && found === undefined) found = entry.uploader;
    }
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
