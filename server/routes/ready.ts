import type { RequestHandler } from 'express';
import type { Logger } from '../logging/logger.js';

/** What GET /ready checks: each named check resolves when that part can be used now. */
export interface ReadinessChecks {
  /** True once the server stops taking requests (SIGTERM): the load balancer should send no more. */
  draining(): boolean;
  checks: Record<string, () => Promise<void>>;
}

/** How long one check may take before it counts as failing. */
const CHECK_TIMEOUT_MS = 5000;

/**
 * GET /ready: 200 `{status:"ready", checks}` when every part this replica needs answers (the
 * bucket, the database), 503 `{status:"not ready", checks}` when one does not or the server is
 * draining, so that a load balancer sends requests only to replicas that can serve them.
 * /health stays as the legacy API had it (the process is up). Neither authenticated nor rate
 * limited; why a check failed is logged, not sent.
 */
export function readyRoute(readiness: ReadinessChecks, log: Logger): RequestHandler {
  return (_req, res, next) => {
    const checks = Object.entries(readiness.checks);
    Promise.all(
      checks.map(([name, check]) =>
        withTimeout(check()).then(
          (): [string, string] => [name, 'ok'],
          (error: unknown): [string, string] => {
            log.warn({ event: 'not_ready', check: name, err: error }, `Readiness check ${name} failed`);
            return [name, 'failing'];
          },
        ),
      ),
    ).then((results) => {
      const outcome: Record<string, string> = Object.fromEntries(results);
      if (readiness.draining()) outcome.server = 'draining';
      const ready = Object.values(outcome).every((result) => result === 'ok');
      res.setHeader('Cache-Control', 'no-store');
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: outcome });
    }, next);
  };
}

function withTimeout(check: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    check,
    new Promise<void>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}
