import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import type { Caller } from './auth.js';
import type { AuthFailureGuard } from './auth-failures.js';
import { ANONYMOUS, type TokenTable } from './token-table.js';

/** The dashboard's login cookie. */
export const VIEWER_COOKIE = 'ros2_upload_viewer';

/** Who may read the fleet view on a request. */
export type ViewerCaller =
  | { kind: 'viewer'; name: string }
  | { kind: 'uploader'; name: string }
  | { kind: 'none'; cookieRejected: boolean };

export interface ViewerAccessOptions {
  viewers: TokenTable;
  uploaders: TokenTable;
  /** The server has no tokens at all (open on loopback): anyone may view, as anyone may upload. */
  open: boolean;
  /** How long a login lasts, in seconds. */
  loginSeconds: number;
  /** The failed-authentication limit per address, shared with the upload API: a wrong token counts there too. */
  failures: AuthFailureGuard;
}

/**
 * Access to the fleet view (the dashboard, /v1/events, /v1/fleet, /v1/bags, /metrics). Viewer
 * tokens are separate from uploader tokens: a viewer sees every uploader; an uploader's token
 * opens nothing here but its own bags. A request is a viewer's when it carries
 * `Authorization: Bearer <viewer token>` (scripts, Prometheus), or the login cookie the
 * dashboard got from POST /v1/dashboard/login (browsers: a token never travels in a URL). The
 * cookie is `v1.<name>.<expiry>.<HMAC-SHA256>` keyed with the SHA-256 of the viewer's token, so
 * it survives restarts, holds no token, and a viewer's new token ends its old logins. It is
 * HttpOnly and SameSite=Strict, and the routes it opens only read, so another site can neither
 * read it nor act with it. On a server with no tokens at all everyone is the viewer `anonymous`.
 */
export class ViewerAccess {
  readonly #o: ViewerAccessOptions;

  constructor(options: ViewerAccessOptions) {
    this.#o = options;
  }

  get open(): boolean {
    return this.#o.open;
  }

  get loginSeconds(): number {
    return this.#o.loginSeconds;
  }

  /** Who the request is; a bearer token that is neither a viewer's nor an uploader's is UNAUTHORIZED. */
  resolve(req: IncomingMessage, now = Date.now()): ViewerCaller {
    const header = req.headers.authorization;
    if (header !== undefined && header !== '') {
      const token = /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1];
      const viewer = token === undefined ? undefined : this.#o.viewers.lookup(token);
      if (viewer !== undefined) return { kind: 'viewer', name: viewer };
      const uploader = token === undefined ? undefined : this.#o.uploaders.lookup(token);
      if (uploader !== undefined) return { kind: 'uploader', name: uploader };
      throw new UploadError(
        'UNAUTHORIZED',
        token !== undefined ? 'The bearer token is not valid' : 'The Authorization header must be "Bearer <token>"',
      );
    }
    const cookie = cookieValue(req.headers.cookie, VIEWER_COOKIE);
    if (cookie !== undefined) {
      const name = this.#verify(cookie, now);
      if (name !== undefined) return { kind: 'viewer', name };
    }
    if (this.#o.open) return { kind: 'viewer', name: ANONYMOUS };
    return { kind: 'none', cookieRejected: cookie !== undefined };
  }

  /** The viewer of a token, for the login; undefined when it is no viewer's. */
  viewerOf(token: string): string | undefined {
    return this.#o.viewers.lookup(token);
  }

  isUploaderToken(token: string): boolean {
    return this.#o.uploaders.lookup(token) !== undefined;
  }

  /** The login cookie's value for a viewer who presented `token`. */
  issue(name: string, token: string, now = Date.now()): string {
    const expiry = Math.floor(now / 1000) + this.#o.loginSeconds;
    const body = `v1.${Buffer.from(name).toString('base64url')}.${expiry}`;
    const key = this.#o.viewers.digestsOf(name).find((digest) => sameToken(digest, token));
    if (!key) throw new UploadError('INTERNAL', `No token of viewer ${name} matches`);
    return `${body}.${mac(key, body)}`;
  }

  #verify(value: string, now: number): string | undefined {
    const parts = value.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return undefined;
    const [, encoded = '', expiry = '', signature = ''] = parts;
    if (!/^\d{1,12}$/.test(expiry) || Number(expiry) * 1000 <= now) return undefined;
    const name = Buffer.from(encoded, 'base64url').toString('utf8');
    const body = `v1.${encoded}.${expiry}`;
    const given = Buffer.from(signature, 'base64url');
    for (const key of this.#o.viewers.digestsOf(name)) {
      const expected = Buffer.from(mac(key, body), 'base64url');
      if (given.length === expected.length && timingSafeEqual(given, expected)) return name;
    }
    return undefined;
  }

  /**
   * Who the request is, as resolve(); an address past the failed-authentication limit is
   * RATE_LIMITED before its token is looked at, and a wrong token counts against it.
   */
  async #resolveGuarded(req: Request, res: Response): Promise<ViewerCaller> {
    const blocked = await this.#o.failures.refusal(req);
    if (blocked) throw blocked;
    try {
      return this.resolve(req);
    } catch (error) {
      if (error instanceof UploadError && error.code === 'UNAUTHORIZED')
        throw await this.#o.failures.failed(req, res, error);
      throw error;
    }
  }

  /** Counts a refused login token against the address's failed-authentication limit; resolves with the answer. */
  loginFailed(req: Request, res: Response, failure: UploadError): Promise<UploadError> {
    return this.#o.failures.failed(req, res, failure);
  }

  /** Only viewers: an uploader's token is FORBIDDEN, nothing at all UNAUTHORIZED. */
  get viewerOnly(): RequestHandler {
    return async (req, res, next) => {
      try {
        const caller = await this.#resolveGuarded(req, res);
        if (caller.kind === 'viewer') {
          res.locals.viewer = caller.name;
          next();
          return;
        }
        next(caller.kind === 'uploader' ? forbidden() : signInNeeded());
      } catch (error) {
        next(error);
      }
    };
  }

  /** Viewers, or an uploader for its own data (res.locals.caller is set for it, as by authenticate()). */
  get viewerOrUploader(): RequestHandler {
    return async (req, res, next) => {
      try {
        const caller = await this.#resolveGuarded(req, res);
        if (caller.kind === 'viewer') res.locals.viewer = caller.name;
        else if (caller.kind === 'uploader')
          res.locals.caller = { uploader: caller.name, authenticated: true } satisfies Caller;
        else {
          next(signInNeeded());
          return;
        }
        next();
      } catch (error) {
        next(error);
      }
    };
  }

  /**
   * For reading stored files (GET/HEAD /v1/files/<path>): a viewer, by its bearer token or its
   * login cookie, is let through as a viewer (res.locals.viewer); every other request goes on
   * to `authenticate` (an uploader's token, a client certificate, anonymous), so a token that
   * is neither a viewer's nor an uploader's is a failed authentication as on every upload
   * route. An address past the failed-authentication limit is refused first either way.
   */
  viewerOr(authenticate: RequestHandler): RequestHandler {
    return async (req, res, next) => {
      try {
        const blocked = await this.#o.failures.refusal(req);
        if (blocked) {
          next(blocked);
          return;
        }
        const viewer = this.#viewerCredential(req);
        if (viewer !== undefined) {
          res.locals.viewer = viewer;
          next();
          return;
        }
      } catch (error) {
        next(error);
        return;
      }
      authenticate(req, res, next);
    };
  }

  /** The viewer a request's bearer token or (without an Authorization header) login cookie names, else undefined. */
  #viewerCredential(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    if (header !== undefined && header !== '') {
      const token = /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1];
      return token === undefined ? undefined : this.#o.viewers.lookup(token);
    }
    const cookie = cookieValue(req.headers.cookie, VIEWER_COOKIE);
    return cookie === undefined ? undefined : this.#verify(cookie, Date.now());
  }
}

/** The viewer of a request the viewer middleware let through, or undefined for an uploader. */
export function viewerOf(res: Response): string | undefined {
  return typeof res.locals.viewer === 'string' ? res.locals.viewer : undefined;
}

/** The Set-Cookie value of a login (or, with `maxAge` 0, of a logout). */
export function viewerCookie(req: Request, value: string, maxAgeSeconds: number): string {
  return [
    `${VIEWER_COOKIE}=${value}`,
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(req.secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * Refuses a state-changing request (login, logout) that does not come from this server's own
 * page: browsers send Origin with every POST, and another site's page has another origin.
 */
export function checkSameOrigin(req: Request): void {
  const origin = req.headers.origin;
  const own = `${req.protocol}://${req.headers.host ?? ''}`;
  if (origin === undefined || origin !== own) {
    throw new UploadError(
      'FORBIDDEN',
      `A login or logout must come from this server's own dashboard page (Origin ${
        origin === undefined ? 'missing' : JSON.stringify(origin.slice(0, 200))
      }, expected ${own})`,
    );
  }
}

function forbidden(): UploadError {
  return new UploadError(
    'FORBIDDEN',
    "This needs a viewer token: an uploader's token opens only its own uploads and bags (see viewerTokensFile)",
  );
}

function signInNeeded(): UploadError {
  return new UploadError(
    'UNAUTHORIZED',
    'Sign in with a viewer token: the dashboard login, or Authorization: Bearer <viewer token>',
  );
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

function sameToken(digest: Buffer, token: string): boolean {
  return timingSafeEqual(digest, createHash('sha256').update(token, 'utf8').digest());
}

/** One cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals < 0) continue;
    if (part.slice(0, equals).trim() === name) return part.slice(equals + 1).trim();
  }
  return undefined;
}
