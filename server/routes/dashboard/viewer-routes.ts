import type { RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import type { ViewerSession } from '../../../common/protocol/fleet-views.js';
import { MAX_BAGS_LISTED, bagDetail, listBagViews } from '../../fleet/bag-queries.js';
import type { FleetView } from '../../fleet/fleet-view.js';
import type { Caller } from '../../http/auth.js';
import { ANONYMOUS } from '../../http/token-table.js';
import { type ViewerAccess, checkSameOrigin, viewerCookie, viewerOf } from '../../http/viewer-access.js';
import type { ServerMetrics } from '../../metrics/server-metrics.js';
import type { SessionStore } from '../../sessions/session-store.js';

/** GET /v1/dashboard/session: who is signed in (401 when nobody). */
export function sessionRoute(access: ViewerAccess): RequestHandler {
  return (_req, res) => {
    const body: ViewerSession = { viewer: viewerOf(res) ?? ANONYMOUS, open: access.open };
    res.setHeader('Cache-Control', 'no-store');
    res.json(body);
  };
}

/**
 * POST /v1/dashboard/login `{"token": "<viewer token>"}` from the dashboard page: sets the
 * HttpOnly, SameSite=Strict login cookie. Refused unless it comes from this server's own page
 * (Origin), with 401 for a token that is no viewer's and 403 for an uploader's.
 */
export function loginRoute(access: ViewerAccess): RequestHandler {
  return async (req, res) => {
    checkSameOrigin(req);
    const token = (req.body as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string' || token.trim() === '') {
      throw new UploadError('INVALID_FIELD', 'token must be the viewer token, a non-empty string');
    }
    const viewer = access.viewerOf(token.trim());
    if (viewer === undefined) {
      if (access.isUploaderToken(token.trim())) {
        throw new UploadError('FORBIDDEN', "That is an uploader's token: the dashboard needs a viewer token");
      }
      throw await access.loginFailed(
        req,
        res,
        new UploadError('UNAUTHORIZED', 'That token is not a viewer token of this server'),
      );
    }
    res.setHeader('Set-Cookie', viewerCookie(req, access.issue(viewer, token.trim()), access.loginSeconds));
    res.setHeader('Cache-Control', 'no-store');
    res.json({ viewer, open: access.open } satisfies ViewerSession);
  };
}

/** POST /v1/dashboard/logout: clears the login cookie (204). */
export function logoutRoute(): RequestHandler {
  return (req, res) => {
    checkSameOrigin(req);
    res.setHeader('Set-Cookie', viewerCookie(req, '', 0));
    res.status(204).end();
  };
}

/** GET /v1/fleet: the dashboard's snapshot as JSON, for scripts. */
export function fleetRoute(fleet: FleetView): RequestHandler {
  return async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(await fleet.snapshot(viewerOf(res) ?? ANONYMOUS));
  };
}

/**
 * GET /v1/bags[?uploader=&state=complete|incomplete&limit=]: bags, most recently changed
 * first. A viewer sees every uploader's; an uploader's token only its own (the `uploader`
 * parameter is then ignored).
 */
export function listBagsRoute(store: SessionStore): RequestHandler {
  return async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const state = query.state;
    if (state !== undefined && state !== 'complete' && state !== 'incomplete') {
      throw new UploadError('INVALID_FIELD', 'state must be complete or incomplete');
    }
    const limit = query.limit === undefined ? 1000 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BAGS_LISTED) {
      throw new UploadError('INVALID_FIELD', `limit must be an integer from 1 to ${MAX_BAGS_LISTED}`);
    }
    const own = ownUploader(res.locals.caller as Caller | undefined);
    const uploader = own ?? (typeof query.uploader === 'string' ? query.uploader : undefined);
    const bags = await listBagViews(store, {
      uploader,
      complete: state === undefined ? undefined : state === 'complete',
      limit,
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ count: bags.length, bags });
  };
}

/**
 * GET /v1/bags/<uploader>/<bag folder>: one bag, with every listed and verified file. An
 * uploader's token sees only its own bags: another uploader's answer 404, as if they did not exist.
 */
export function bagRoute(store: SessionStore): RequestHandler {
  return async (req, res) => {
    const params = req.params as { uploader?: string; bag?: string[] | string };
    const uploader = params.uploader ?? '';
    const folder = Array.isArray(params.bag) ? params.bag.join('/') : String(params.bag ?? '');
    const own = ownUploader(res.locals.caller as Caller | undefined);
    if (own !== undefined && own !== uploader) {
      throw new UploadError(
        'FILE_NOT_FOUND',
        `No bag ${JSON.stringify(folder)} of uploader ${uploader} on this server`,
      );
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json(await bagDetail(store, uploader, folder));
  };
}

/** GET /metrics: Prometheus' text format. */
export function metricsRoute(metrics: ServerMetrics): RequestHandler {
  return async (_req, res) => {
    const text = await metrics.text();
    res.setHeader('Content-Type', metrics.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(text);
  };
}

function ownUploader(caller: Caller | undefined): string | undefined {
  return caller?.authenticated ? caller.uploader : undefined;
}
