import type { TLSSocket } from 'node:tls';
import type { Request, RequestHandler, Response } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import type { AuthFailureGuard } from './auth-failures.js';
import type { ClientCertificates } from './client-certificates.js';
import { ANONYMOUS, type TokenTable } from './token-table.js';

export interface Caller {
  uploader: string;
  /** True when a valid token or client certificate named the uploader (false for anonymous requests). */
  authenticated: boolean;
}

export interface Credentials {
  tokens: TokenTable;
  /** Client certificates (mutual TLS), when the server asks for them. */
  certificates: ClientCertificates | undefined;
  /** Requests without credentials belong to `anonymous`. */
  anonymousAllowed: boolean;
  /** Counts failed authentications per address and refuses an address past the limit. */
  failures: AuthFailureGuard;
}

/**
 * Resolves the caller from its credentials: `Authorization: Bearer <token>` and, where the
 * server asks for them, a client certificate. Each credential presented must be valid: a wrong
 * or malformed token, or a certificate that is not verified or not mapped, is always 401, even
 * where anonymous requests are allowed (no silent downgrade). A token and a certificate together
 * must name the same uploader (neither overrides the other). Without either, the caller is
 * `anonymous` when the server is open, else 401. Every 401 counts against the address's
 * failed-authentication limit, and an address past it gets 429 before its credentials are
 * looked at. The Authorization header is never logged.
 */
export function authenticate(credentials: Credentials): RequestHandler {
  const { tokens, certificates, anonymousAllowed, failures } = credentials;
  return async (req, res, next) => {
    const blocked = await failures.refusal(req);
    if (blocked) {
      next(blocked);
      return;
    }
    const fail = async (message: string): Promise<void> => {
      next(await failures.failed(req, res, new UploadError('UNAUTHORIZED', message)));
    };
    const certificate = certificates && isTls(req) ? certificates.identify(req.socket as TLSSocket) : undefined;
    if (certificate && 'refused' in certificate) {
      await fail(certificate.refused);
      return;
    }
    const header = req.headers.authorization;
    let tokenUploader: string | undefined;
    if (header !== undefined && header !== '') {
      const presented = /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1];
      tokenUploader = presented === undefined ? undefined : tokens.lookup(presented);
      if (!tokenUploader) {
        await fail(
          presented !== undefined
            ? 'The bearer token is not valid'
            : 'The Authorization header must be "Bearer <token>"',
        );
        return;
      }
    }
    if (certificate && tokenUploader !== undefined && certificate.uploader !== tokenUploader) {
      await fail(
        `The client certificate is uploader ${certificate.uploader}'s but the bearer token is ${tokenUploader}'s: ` +
          'send one of them, or credentials of one robot',
      );
      return;
    }
    const uploader = certificate?.uploader ?? tokenUploader;
    if (uploader !== undefined) {
      res.locals.caller = { uploader, authenticated: true } satisfies Caller;
      next();
      return;
    }
    if (!anonymousAllowed) {
      await fail(
        certificates
          ? 'This server requires a client certificate signed by its clientCa, or a bearer token ' +
              '(Authorization: Bearer <token>)'
          : 'This server requires a bearer token (Authorization: Bearer <token>)',
      );
      return;
    }
    res.locals.caller = { uploader: ANONYMOUS, authenticated: false } satisfies Caller;
    next();
  };
}

function isTls(req: Request): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true;
}

/** For routes that list an uploader's files: an anonymous caller gets 401 even on an open server. */
export const requireToken: RequestHandler = (_req, res, next) => {
  if (!callerOf(res).authenticated) {
    next(new UploadError('UNAUTHORIZED', 'Listing uploads requires a bearer token (Authorization: Bearer <token>)'));
    return;
  }
  next();
};

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new UploadError('INTERNAL', 'authenticate() did not run for this route');
  return caller;
}
