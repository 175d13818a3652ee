import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createUploadHandler, type UploadHandler } from '../../server/index.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/** GET /ready: what a load balancer asks before sending requests; 503 while the server drains. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function get(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (piece: string) => (text += piece));
        response.on('end', () =>
          resolve({ status: response.statusCode!, headers: response.headers, body: JSON.parse(text) }),
        );
      })
      .on('error', reject);
  });
}

describe('GET /ready', () => {
  it('answers 200 with each check when the storage and the session database work; /health unchanged', async () => {
    const server: TestServer = await startTestServer({ rateLimit: true, tokens: ['robot-1=secret-token-1'] });
    cleanups.push(() => server.close());
    const ready = await get(`${server.url}/ready`);
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', checks: { storage: 'ok', database: 'ok' } } });
    expect(ready.headers['cache-control']).toBe('no-store');
    const health = await get(`${server.url}/health`);
    expect(health.body).toMatchObject({ status: 'ok', protocol: 1 });
  });

  it('answers 503 once the handler drains, and every answer then closes its connection', async () => {
    const dir: TempDir = await createTempDir('ready-drain');
    cleanups.push(() => dir.remove());
    const handler: UploadHandler = await createUploadHandler({
      uploadDir: dir.path,
      allowAnonymous: true,
      logLevel: 'silent',
    });
    const host = http.createServer((req, res) => handler.handle(req, res));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      host.closeAllConnections();
      await new Promise((resolve) => host.close(resolve));
      await handler.close();
    });
    const base = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
    expect((await get(`${base}/ready`)).status).toBe(200);
    handler.drain();
    const draining = await get(`${base}/ready`);
    expect(draining).toMatchObject({ status: 503, body: { status: 'not ready', checks: { server: 'draining' } } });
    expect(draining.headers.connection).toBe('close');
    expect((await get(`${base}/health`)).headers.connection).toBe('close');
  });
});
