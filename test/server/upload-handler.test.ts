import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createUploadHandler, type UploadHandler } from '../../server/index.js';
import { legacyUploadFile } from '../helpers/legacy-client.js';
import { call, uploadFile } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { testToken } from '../helpers/tokens.js';

const TOKEN = testToken('upload-handler robot7');
const KiB = 1024;

let dir: TempDir | undefined;
let handler: UploadHandler | undefined;
let host: http.Server | undefined;

afterEach(async () => {
  if (host) await new Promise<void>((resolve) => host!.close(() => resolve()));
  host = undefined;
  await handler?.close();
  handler = undefined;
  await dir?.remove();
  dir = undefined;
});

async function listen(server: http.Server): Promise<string> {
  host = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A native upload (3 chunks) and a legacy one (2 chunks) through `base`; both stored byte-identical under robot7. */
async function uploadBoth(base: string, uploadDir: string): Promise<void> {
  const native = path.join(dir!.path, 'native.bin');
  const legacy = path.join(dir!.path, 'legacy.bin');
  await writeRandomFile(native, 40 * KiB + 3);
  await writeRandomFile(legacy, 9 * KiB);
  const sent = await uploadFile(base, native, 'bag/native.bin', { token: TOKEN, chunkSize: 16 * KiB });
  expect(sent.complete.status, JSON.stringify(sent.complete.json)).toBe(200);
  const finalized = await legacyUploadFile(base, legacy, 'bag/legacy.bin', { chunks: 2, token: TOKEN });
  expect(finalized.finalize.status, JSON.stringify(finalized.finalize.json)).toBe(200);
  for (const [file, name] of [
    [native, 'bag/native.bin'],
    [legacy, 'bag/legacy.bin'],
  ] as const) {
    expect(await readFile(path.join(uploadDir, 'completed', 'robot7', ...name.split('/')))).toEqual(
      await readFile(file),
    );
  }
  const stored = await call(base, 'GET', '/v1/files/bag/native.bin', undefined, { token: TOKEN });
  expect(stored.json).toMatchObject({ state: 'complete', path: 'bag/native.bin', size: 40 * KiB + 3 });
}

describe('the upload handler mounted in another server', () => {
  it('serves both APIs under a prefix of a plain node:http server, handing other requests back to it', async () => {
    dir = await createTempDir('handler-http');
    const uploadDir = path.join(dir.path, 'storage');
    handler = await createUploadHandler({
      uploadDir,
      tokens: [`robot7=${TOKEN}`],
      basePath: '/uploads',
      logLevel: 'silent',
      rateLimit: false,
    });
    const mounted = handler;
    const url = await listen(
      http.createServer((req, res) =>
        mounted.handle(req, res, () => {
          res.setHeader('Content-Type', 'text/plain');
          res.end(`host: ${req.url}`);
        }),
      ),
    );

    expect(await (await fetch(`${url}/somewhere/else`)).text()).toBe('host: /somewhere/else');
    const health = await call(`${url}/uploads`, 'GET', '/health');
    expect(health.json).toMatchObject({ status: 'ok', protocol: 1 });
    expect((await call(`${url}/uploads`, 'GET', '/v1/nothing-here', undefined, { token: TOKEN })).json).toMatchObject({
      code: 'ROUTE_NOT_FOUND',
    });
    const anonymous = await call(`${url}/uploads`, 'GET', '/v1/files/x.bin');
    expect(anonymous.status, JSON.stringify(anonymous.json)).toBe(401);
    await uploadBoth(`${url}/uploads`, uploadDir);
    // The host's own request handling is untouched by the requests the handler served.
    expect(await (await fetch(`${url}/after`)).text()).toBe('host: /after');
  });

  it('answers a request outside its basePath with the JSON 404 when the host gives it nowhere to go', async () => {
    dir = await createTempDir('handler-alone');
    handler = await createUploadHandler({
      uploadDir: dir.path,
      allowAnonymous: true,
      basePath: '/uploads',
      logLevel: 'silent',
    });
    const mounted = handler;
    const url = await listen(http.createServer((req, res) => mounted.handle(req, res)));
    const outside = await call(url, 'GET', '/elsewhere');
    expect(outside.status).toBe(404);
    expect(outside.json).toMatchObject({ success: false, code: 'ROUTE_NOT_FOUND' });
    expect((await call(`${url}/uploads`, 'GET', '/health')).status).toBe(200);
  });

  it("works as Express middleware under a path, next to the host app's own routes", async () => {
    dir = await createTempDir('handler-express');
    const uploadDir = path.join(dir.path, 'storage');
    handler = await createUploadHandler({
      uploadDir,
      tokens: [`robot7=${TOKEN}`],
      logLevel: 'silent',
      rateLimit: false,
    });
    const app = express();
    app.get('/', (_req, res) => {
      res.send('fleet portal');
    });
    app.use('/api/uploads', handler.handle);
    app.use(express.json());
    app.post('/api/notes', (req, res) => {
      res.json({ note: (req.body as { note?: string }).note, path: req.path });
    });
    const url = await listen(http.createServer(app));

    await uploadBoth(`${url}/api/uploads`, uploadDir);
    expect(await (await fetch(`${url}/`)).text()).toBe('fleet portal');
    const note = await fetch(`${url}/api/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'hi' }),
    });
    expect(await note.json()).toEqual({ note: 'hi', path: '/api/notes' });
    expect((await call(`${url}/api/uploads`, 'GET', '/no/such/route', undefined, { token: TOKEN })).json).toMatchObject(
      { code: 'ROUTE_NOT_FOUND' },
    );
  });

  it('needs tokens or an explicit allowAnonymous: it cannot tell who can reach its host', async () => {
    dir = await createTempDir('handler-open');
    await expect(createUploadHandler({ uploadDir: dir.path, logLevel: 'silent' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/tokens.*allowAnonymous/),
    });
  });
});
