import { afterEach, describe, expect, it } from 'vitest';
import type { UploadServerOptions } from '../../server/index.js';
import { captureLogger, type CapturedLogs } from '../helpers/capture-logger.js';
import { call } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { testToken } from '../helpers/tokens.js';

/**
 * Issue 11, point 12: failed authentication is not free. Before the fix, 20,000 wrong-token
 * requests in 12 s were all answered 401, none limited, nothing logged at info level.
 */

const ROBOT1 = testToken('auth-failures robot1');
const LIMIT = 5;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: UploadServerOptions = {}): Promise<{ server: TestServer; logs: CapturedLogs }> {
  const logs = captureLogger('debug');
  const server = await startTestServer({
    tokens: [`robot1=${ROBOT1}`],
    rateLimit: true,
    rateLimitAuthFailures: LIMIT,
    // Only the failed-authentication limit is under test.
    rateLimitNative: 0,
    rateLimitSessions: 0,
    logger: logs.logger,
    ...options,
  });
  cleanups.push(() => server.close());
  return { server, logs };
}

const lookup = (url: string, token: string | undefined, from?: string) =>
  call(url, 'GET', '/v1/files/run1/x.mcap', undefined, {
    ...(token ? { token } : {}),
    ...(from ? { headers: { 'x-forwarded-for': from } } : {}),
  });

describe('failed authentication is limited per client address', { timeout: 60_000 }, () => {
  it('after the limit, the address gets 429 with Retry-After, valid token or not; others unaffected', async () => {
    const { server, logs } = await start({ trustProxy: 'loopback' });
    const wrong = testToken('a guess');
    for (let i = 0; i < LIMIT; i += 1) expect((await lookup(server.url, wrong)).status).toBe(401);
    const limited = await lookup(server.url, wrong);
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ success: false, code: 'RATE_LIMITED' });
    expect(limited.json.error).toMatch(/Too many failed authentications from this address/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // While limited, the address's credentials are not even checked: a right guess gains nothing.
    const right = await lookup(server.url, ROBOT1);
    expect(right.status).toBe(429);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    // Another client address (behind the trusted proxy) has its own budget.
    expect((await lookup(server.url, ROBOT1, '203.0.113.7')).status).toBe(404);
    expect((await lookup(server.url, wrong, '203.0.113.7')).status).toBe(401);

    const entries = logs.entries();
    expect(entries.find((e) => e.event === 'auth_failed')).toMatchObject({
      level: 30,
      address: '127.0.0.1',
      reason: 'The bearer token is not valid',
    });
    expect(entries.find((e) => e.event === 'auth_failures_limited')).toMatchObject({
      level: 40,
      address: '127.0.0.1',
      failures: LIMIT,
      windowSeconds: 60,
    });
    expect(entries.find((e) => e.event === 'auth_failed' && e.address === '203.0.113.7')).toBeDefined();
    expect(logs.text()).not.toContain(wrong);
    expect(logs.text()).not.toContain(ROBOT1);
  });

  it('a forged X-Forwarded-For does not escape the limit unless the proxy is trusted', async () => {
    const { server } = await start();
    const answers: number[] = [];
    for (let i = 0; i < LIMIT + 3; i += 1)
      answers.push((await lookup(server.url, testToken(`guess ${i}`), `198.51.100.${i}`)).status);
    expect(answers).toEqual([...Array(LIMIT).fill(401), 429, 429, 429]);
  });

  it('counts missing and malformed credentials too, but never successful requests', async () => {
    const { server } = await start();
    for (let i = 0; i < 50; i += 1) expect((await lookup(server.url, ROBOT1)).status).toBe(404);
    expect((await lookup(server.url, undefined)).status).toBe(401);
    const malformed = await call(server.url, 'GET', '/v1/files/x', undefined, {
      headers: { authorization: 'Basic x' },
    });
    expect(malformed.status).toBe(401);
    for (let i = 2; i < LIMIT; i += 1) expect((await lookup(server.url, testToken(`g${i}`))).status).toBe(401);
    expect((await lookup(server.url, undefined)).status).toBe(429);
  });

  it('a flood of wrong tokens gets exactly the limit of 401s, the rest 429, and a few log lines', async () => {
    const { server, logs } = await start();
    const statuses = new Map<number, number>();
    const flood = Array.from({ length: 20 }, async (_, worker) => {
      for (let i = 0; i < 25; i += 1) {
        const { status } = await lookup(server.url, testToken(`flood ${worker} ${i}`));
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    });
    await Promise.all(flood);
    expect(Object.fromEntries(statuses)).toEqual({ 401: LIMIT, 429: 500 - LIMIT });
    const lines = logs.entries().filter((e) => String(e.event).startsWith('auth_'));
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(lines.map((e) => e.event)).toEqual(expect.arrayContaining(['auth_failed', 'auth_failures_limited']));
  });

  it('is off with --no-rate-limit or at 0 (failures are still logged)', async () => {
    const { server, logs } = await start({ rateLimitAuthFailures: 0 });
    for (let i = 0; i < LIMIT * 3; i += 1) expect((await lookup(server.url, testToken(`off ${i}`))).status).toBe(401);
    expect(logs.entries().find((e) => e.event === 'auth_failed')).toBeDefined();
  });
});
