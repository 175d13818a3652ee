import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { putWholeFile } from '../helpers/fleet-client.js';
import { call } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { testToken } from '../helpers/tokens.js';

/**
 * Viewers download stored files: GET/HEAD /v1/files/<path>?uploader=<name> with a viewer token
 * or the dashboard's login cookie reads any uploader's file (whole or one range); a viewer never
 * writes, and an uploader still reads only its own.
 */
let server: TestServer;
const ROBOT1 = testToken('viewer downloads robot1');
const ROBOT2 = testToken('viewer downloads robot2');
const VIEWER = testToken('viewer downloads ops');
const PATH = 'run1/split_0.mcap';
const one = randomBytes(200_000);
const two = randomBytes(150_000);
const bytes = { Accept: 'application/octet-stream' };
const fileUrl = (uploader?: string): string =>
  `${server.url}${routes.file(PATH)}${uploader === undefined ? '' : `?uploader=${uploader}`}`;
const bearer = (token: string): Record<string, string> => ({ ...bytes, Authorization: `Bearer ${token}` });

beforeAll(async () => {
  server = await startTestServer({ tokens: [`robot1=${ROBOT1}`, `robot2=${ROBOT2}`], viewerTokens: [`ops=${VIEWER}`] });
  // The same path for both robots, different bytes: only ?uploader= tells them apart.
  expect((await putWholeFile(server.url, PATH, one, ROBOT1)).status).toBe(201);
  expect((await putWholeFile(server.url, PATH, two, ROBOT2)).status).toBe(201);
});
afterAll(async () => {
  await server?.close();
});

describe('viewer downloads', () => {
  it("gives a viewer any uploader's file byte-identical, whole, by range, and HEAD", async () => {
    for (const [uploader, data] of [
      ['robot1', one],
      ['robot2', two],
    ] as const) {
      const whole = await fetch(fileUrl(uploader), { headers: bearer(VIEWER) });
      expect(whole.status).toBe(200);
      expect(whole.headers.get('content-length')).toBe(String(data.length));
      expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
      const part = await fetch(fileUrl(uploader), { headers: { ...bearer(VIEWER), Range: 'bytes=1000-65535' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 1000-65535/${data.length}`);
      expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000, 65536))).toBe(true);
      const head = await fetch(fileUrl(uploader), { method: 'HEAD', headers: bearer(VIEWER) });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(data.length));
      const past = await fetch(fileUrl(uploader), { headers: { ...bearer(VIEWER), Range: `bytes=${data.length}-` } });
      expect(past.status).toBe(416);
      const meta = await call(server.url, 'GET', `${routes.file(PATH)}?uploader=${uploader}`, undefined, {
        token: VIEWER,
      });
      expect(meta.status).toBe(200);
      expect(meta.json).toMatchObject({ state: 'complete', size: data.length });
    }
    const unnamed = await fetch(fileUrl(), { headers: bearer(VIEWER) });
    expect(unnamed.status).toBe(400);
    expect(await unnamed.json()).toMatchObject({ code: 'INVALID_FIELD' });
    expect((await fetch(fileUrl('robot3'), { headers: bearer(VIEWER) })).status).toBe(404);
    expect((await fetch(fileUrl('..'), { headers: bearer(VIEWER) })).status).toBe(400);
  });

  it("opens downloads with the dashboard's login cookie too", async () => {
    const login = await fetch(`${server.url}/v1/dashboard/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: server.url },
      body: JSON.stringify({ token: VIEWER }),
    });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const answer = await fetch(fileUrl('robot2'), { headers: { ...bytes, cookie } });
    expect(answer.status).toBe(200);
    expect(Buffer.from(await answer.arrayBuffer()).equals(two)).toBe(true);
    const forged = `${cookie.slice(0, -2)}xx`;
    expect((await fetch(fileUrl('robot2'), { headers: { ...bytes, cookie: forged } })).status).toBe(401);
  });

  it('never lets a viewer create, replace or cancel', async () => {
    const put = await putWholeFile(server.url, 'run9/new.mcap', one, VIEWER);
    expect(put.status).toBe(401);
    const replace = await putWholeFile(server.url, PATH, two, VIEWER);
    expect(replace.status).toBe(401);
    const session = await call(
      server.url,
      'POST',
      routes.sessions,
      { relativePath: 'run9/x.mcap', size: 1 },
      {
        token: VIEWER,
      },
    );
    expect(session.status).toBe(401);
    expect((await call(server.url, 'DELETE', '/v1/sessions/some-id', undefined, { token: VIEWER })).status).toBe(401);
    // Nothing changed: robot1's file is still its own bytes.
    const still = await fetch(fileUrl('robot1'), { headers: bearer(VIEWER) });
    expect(Buffer.from(await still.arrayBuffer()).equals(one)).toBe(true);
  });

  it('keeps an uploader to its own files, and an unknown token is a failed authentication', async () => {
    const own = await fetch(fileUrl(), { headers: bearer(ROBOT1) });
    expect(Buffer.from(await own.arrayBuffer()).equals(one)).toBe(true);
    const ownNamed = await fetch(fileUrl('robot1'), { headers: bearer(ROBOT1) });
    expect(Buffer.from(await ownNamed.arrayBuffer()).equals(one)).toBe(true);
    const other = await fetch(fileUrl('robot2'), { headers: bearer(ROBOT1) });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ code: 'FILE_NOT_FOUND' });
    expect((await fetch(fileUrl('robot2'), { method: 'HEAD', headers: bearer(ROBOT1) })).status).toBe(404);
    const unknown = await fetch(fileUrl('robot1'), { headers: bearer(testToken('nobody')) });
    expect(unknown.status).toBe(401);
    expect((await fetch(fileUrl('robot1'), { headers: bytes })).status).toBe(401);
  });
});
