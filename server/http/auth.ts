import type { RequestHandler, Response } from 'express';
import { UploadError } from '../../common/errors/upload-error.js';
import { ANONYMOUS, type TokenTable } from './token-table.js';

export interface Caller {
  uploader: string;
  /** True when a valid token named the uploader (false for anonymous requests). */
  authenticated: boolean;
}

/**
 * Resolves the caller from `Authorization: Bearer <token>`. A wrong or malformed token is
 * always 401, even where anonymous requests are allowed (no silent downgrade). Without a token
 * the caller is `anonymous` when the server is open (no tokens configured, or allowAnonymous),
 * else 401. The header is never logged.
 */
export function authenticate(tokens: TokenTable, anonymousAllowed: boolean): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    if (header === undefined || header === '') {
      if (!anonymousAllowed) {
        next(new UploadError('UNAUTHORIZED', 'This server requires a bearer token (Authorization: Bearer <token>)'));
        return;
      }
      res.locals.caller = { uploader: ANONYMOUS, authenticated: false } satisfies Caller;
      next();
      return;
    }
    const token = /^Bearer[ ]+(\S+)\s*$/i.exec(header)?.[1];
    const uploader = token === undefined ? undefined : tokens.lookup(token);
    if (!uploader) {
      next(
        new UploadError(
          'UNAUTHORIZED',
          token !== undefined ? 'The bearer token is not valid' : 'The Authorization header must be "Bearer <token>"',
        ),
      );
      return;
    }
    res.locals.caller = { uploader, authenticated: true } satisfies Caller;
    next();
  };
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
