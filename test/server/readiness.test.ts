import { readdir } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createUploadHandler, type UploadHandler } from '../../server/index.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

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
    const server: TestServer = await startTestServer({
      rateLimit: true,
      tokens: ['robot-1=secret-token-1-2c26b46b68ffc68ff99b453c1d304134'],
    });
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

  it('on SIGTERM the program refuses new connections and cuts a request still unfinished after the bound', async () => {
    // The bound is --shutdown-timeout: a robot whose chunk never ends must not keep a replica
    // from exiting (its chunk was not acknowledged, so it is sent again elsewhere).
    const dir: TempDir = await createTempDir('ready-bound');
    cleanups.push(() => dir.remove());
    const server = await spawnServer([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--upload-dir',
      dir.path,
      '--shutdown-timeout',
      '1',
    ]);
    cleanups.push(async () => void (await server.stop('SIGKILL')));
    const init = await legacyPost(server.url, '/upload/init', { filename: 'stuck.bag', filesize: 1000, chunks: 1 });
    const id = init.json.upload_id as string;
    const form = new FormData();
    form.append('upload_id', id);
    form.append('chunk_index', '0');
    form.append('chunk_total', '1');
    form.append('chunk', new Blob([Buffer.alloc(1000, 1)]), 'c');
    const body = new Response(form);
    const bytes = Buffer.from(await body.arrayBuffer());
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (text: string) => (answer += text));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(
      `POST /upload/chunk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${body.headers.get('content-type')}\r\n` +
        `Content-Length: ${bytes.length}\r\n\r\n`,
    );
    // All but the last bytes: the request never ends.
    socket.write(bytes.subarray(0, bytes.length - 100));
    await waitFor(
      async () => (await readdir(path.join(dir.path, 'temp', id))).some((name) => name.startsWith('part-')),
      'the chunk to be under way',
    );
    server.child.kill('SIGTERM');
    await waitFor(() => server.stdout().includes('"event":"shutdown"'), 'the shutdown log line');
    const refused = await new Promise<string>((resolve) => {
      const probe = net.connect(Number(port), '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve('connected');
      });
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(await server.exited).toBe(0);
    await closed;
    expect(answer).toBe('');
    expect(server.stdout()).toContain('"event":"closed"');
  });
});
