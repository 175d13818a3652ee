import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import { UploadError } from '../../../common/errors/upload-error.js';
import { packageRoot } from '../../../common/program/package-version.js';

/**
 * Everything the page loads comes from this server: no CDN, no inline script or style, no
 * framing by another site, nothing sent as a referrer.
 */
const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

/** Where `npm run build` puts the dashboard page (vite; see server/dashboard-page/). */
export function dashboardAssetsDir(): string | undefined {
  const root = packageRoot();
  return root === undefined ? undefined : path.join(root, 'dist', 'dashboard');
}

/**
 * GET / and /dashboard: the dashboard page, and /dashboard/assets/*: its scripts and styles
 * (content-hashed names, cached for a year). The page holds no data and needs no login to
 * load: it asks /v1/dashboard/session, shows the login form when needed, then reads
 * /v1/events. A server whose page was not built answers 503 naming the build command.
 */
export function dashboardPage(dir = dashboardAssetsDir()): { index: RequestHandler; assets: RequestHandler } {
  let html: string | undefined;
  const index: RequestHandler = (_req, res, next) => {
    const file = dir === undefined ? undefined : path.join(dir, 'index.html');
    if (html === undefined && file !== undefined && existsSync(file)) html = readFileSync(file, 'utf8');
    if (html === undefined) {
      next(
        new UploadError(
          'SERVER_UNAVAILABLE',
          'The dashboard page is not built: run `npm run build` in the package (it writes dist/dashboard/)',
        ),
      );
      return;
    }
    res.set(PAGE_HEADERS).type('html').send(html);
  };
  const serve =
    dir === undefined
      ? undefined
      : express.static(path.join(dir, 'assets'), { index: false, immutable: true, maxAge: '365d', fallthrough: true });
  const assets: RequestHandler = (req, res, next) => {
    res.set({ 'X-Content-Type-Options': 'nosniff' });
    if (serve) serve(req, res, next);
    else next();
  };
  return { index, assets };
}
