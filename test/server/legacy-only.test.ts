import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { legacyUploadFile } from '../helpers/legacy-client.js';
import { call } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let files: TempDir;
let server: TestServer;

beforeAll(async () => {
  files = await createTempDir('legacy-only');
  server = await startTestServer({ nativeApi: false });
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

describe('--no-native-api: a legacy-only server', () => {
  it("answers /health as the legacy server does: no protocol, the legacy server's features", async () => {
    const health = (await (await fetch(`${server.url}/health`)).json()) as Record<string, unknown>;
    expect(health.status).toBe('ok');
    expect(health).not.toHaveProperty('protocol');
    expect(health.features).toEqual(['chunked-upload', 'compression', 'rate-limiting', 'ssl-support']);
  });

  it('has no native routes (404 ROUTE_NOT_FOUND) and stores nothing through them', async () => {
    const created = await call(server.url, 'POST', routes.sessions, {
      path: 'a.bin',
      size: 10,
      fingerprint: `fp1:${'0'.repeat(64)}`,
    });
    expect(created.status).toBe(404);
    expect(created.json).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    const whole = await fetch(`${server.url}${routes.file('b.bin')}`, { method: 'PUT', body: 'hello' });
    expect(whole.status).toBe(404);
    await whole.arrayBuffer();
    expect((await call(server.url, 'GET', routes.session('x'))).status).toBe(404);
  });

  it('still receives a file through the legacy API, byte-identical', async () => {
    const file = path.join(files.path, 'run.bag');
    await writeRandomFile(file, 300_000);
    const upload = await legacyUploadFile(server.url, file, 'run.bag', { chunks: 3 });
    expect(upload.finalize.status).toBe(200);
    const stored = await readFile(server.completedPath('anonymous', 'run.bag'));
    expect(Buffer.compare(stored, await readFile(file))).toBe(0);
  });
});
