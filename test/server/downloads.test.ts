import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { legacyGet } from '../helpers/legacy-client.js';
import { testToken } from '../helpers/tokens.js';
import { uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * Reading back what arrived: GET /uploads on an open loopback server (the default, and the
 * agent's bundled one), and downloads of stored files (Accept: application/octet-stream), whole
 * or by range, for the uploader that stored them only.
 */
let files: TempDir;
let open: TestServer;
let tokens: TestServer;
let data: Buffer;
let sha: string;
const ROBOT1 = testToken('downloads robot1');
const ROBOT2 = testToken('downloads robot2');
const bytes = { Accept: 'application/octet-stream' };

beforeAll(async () => {
  files = await createTempDir('downloads');
  const file = path.join(files.path, 'split_0.mcap');
  await writeRandomFile(file, 300_000);
  data = await readFile(file);
  sha = await sha256OfFile(file);
  open = await startTestServer();
  tokens = await startTestServer({ tokens: [`robot1=${ROBOT1}`, `robot2=${ROBOT2}`] });
  expect((await uploadFile(open.url, file, 'run1/split_0.mcap', { chunkSize: 64 * 1024 })).complete.status).toBe(200);
  expect(
    (await uploadFile(tokens.url, file, 'run1/split_0.mcap', { chunkSize: 64 * 1024, token: ROBOT1 })).complete.status,
  ).toBe(200);
});
afterAll(async () => {
  await open?.close();
  await tokens?.close();
  await files?.remove();
});

describe('GET /uploads and downloads', () => {
  it('lists what arrived without a token where the server runs open on loopback, not where it has tokens', async () => {
    const listing = await legacyGet(open.url, '/uploads');
    expect(listing.status).toBe(200);
    expect((listing.json.uploads as { filename: string }[]).map((u) => u.filename)).toEqual(['run1/split_0.mcap']);
    expect((await legacyGet(tokens.url, '/uploads')).status).toBe(401);
    expect((await legacyGet(tokens.url, '/uploads', ROBOT1)).status).toBe(200);
  });

  it('sends a stored file whole with Accept: application/octet-stream (JSON metadata otherwise)', async () => {
    const url = `${open.url}${routes.file('run1/split_0.mcap')}`;
    const meta = await fetch(url);
    expect(meta.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await meta.json()).toMatchObject({ state: 'complete', size: data.length, sha256: sha });
    const whole = await fetch(url, { headers: bytes });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('application/octet-stream');
    expect(whole.headers.get('content-length')).toBe(String(data.length));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(whole.headers.get('etag')).toBe(`"${sha}"`);
    expect(whole.headers.get('x-content-sha256')).toBe(sha);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const head = await fetch(url, { method: 'HEAD', headers: bytes });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
  });

  it('sends one byte range (206), the last n bytes, and answers 416 for a range past the end', async () => {
    const url = `${open.url}${routes.file('run1/split_0.mcap')}`;
    const part = await fetch(url, { headers: { ...bytes, Range: 'bytes=100000-165535' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100000-165535/${data.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100000, 165536))).toBe(true);
    const tail = await fetch(url, { headers: { ...bytes, Range: 'bytes=-10' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(data.length - 10))).toBe(true);
    const rest = await fetch(url, { headers: { ...bytes, Range: `bytes=${data.length - 3}-` } });
    expect(Buffer.from(await rest.arrayBuffer()).equals(data.subarray(data.length - 3))).toBe(true);
    const past = await fetch(url, { headers: { ...bytes, Range: `bytes=${data.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${data.length}`);
    expect(await past.json()).toMatchObject({ success: false, code: 'RANGE_NOT_SATISFIABLE' });
    // Several ranges are not served as multipart: the whole file comes instead, as RFC 9110 allows.
    const many = await fetch(url, { headers: { ...bytes, Range: 'bytes=0-1,5-6' } });
    expect(many.status).toBe(200);
    expect(Buffer.from(await many.arrayBuffer()).equals(data)).toBe(true);
  });

  it('downloads only for the uploader that stored the file (404 for another, 401 without a token)', async () => {
    const url = `${tokens.url}${routes.file('run1/split_0.mcap')}`;
    const own = await fetch(url, { headers: { ...bytes, Authorization: `Bearer ${ROBOT1}` } });
    expect(own.status).toBe(200);
    expect(Buffer.from(await own.arrayBuffer()).equals(data)).toBe(true);
    const other = await fetch(url, { headers: { ...bytes, Authorization: `Bearer ${ROBOT2}` } });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ code: 'FILE_NOT_FOUND' });
    expect((await fetch(url, { headers: bytes })).status).toBe(401);
    const missing = await fetch(`${open.url}${routes.file('run1/never.mcap')}`, { headers: bytes });
    expect(missing.status).toBe(404);
  });
});
