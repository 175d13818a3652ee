import { afterEach, describe, expect, it } from 'vitest';
import type { FleetSnapshot, FleetUpdate } from '../../common/protocol/fleet-views.js';
import { fixtureFiles, putWholeFile, viewerGet } from '../helpers/fleet-client.js';
import { call, putChunk } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { waitFor } from '../helpers/wait-for.js';

const TOKENS = [
  'robot1=robot1-token-0123456789abcdef0123456789-0001',
  'robot2=robot2-token-0123456789abcdef0123456789-0002',
];
const VIEWERS = ['ops=viewer-token-0123456789abcdef0123456789-0001'];
const VIEWER = 'viewer-token-0123456789abcdef0123456789-0001';
const ROBOT1 = 'robot1-token-0123456789abcdef0123456789-0001';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** POST /v1/dashboard/login as the page does (JSON, with the page's Origin unless told otherwise). */
async function login(base: string, token: string, origin: string | null = base): Promise<Response> {
  return fetch(`${base}/v1/dashboard/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin !== null ? { origin } : {}) },
    body: JSON.stringify({ token }),
  });
}

/** Reads server-sent events from GET /v1/events until `until` says stop. */
async function readEvents(
  base: string,
  headers: Record<string, string>,
  until: (events: { event: string; data: unknown }[]) => boolean,
): Promise<{ event: string; data: unknown }[]> {
  const abort = new AbortController();
  const answer = await fetch(`${base}/v1/events`, { headers, signal: abort.signal });
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: { event: string; data: unknown }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = answer.body?.getReader();
  if (!reader) throw new Error('no body');
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

describe('dashboard access: viewer tokens and the login cookie', () => {
  it('logs a viewer in from its own page only, with an HttpOnly SameSite=Strict cookie', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    const base = server.url;
    expect((await login(base, VIEWER, 'https://evil.example')).status).toBe(403);
    expect((await login(base, VIEWER, null)).status).toBe(403);
    expect((await login(base, 'no-such-token-1')).status).toBe(401);
    const asUploader = await login(base, ROBOT1);
    expect(asUploader.status).toBe(403);
    expect(asUploader.headers.get('set-cookie')).toBeNull();

    const answer = await login(base, VIEWER);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ viewer: 'ops', open: false });
    const cookie = answer.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^ros2_upload_viewer=v1\.[^;]+; Path=\/; Max-Age=86400; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(VIEWER);
    const value = cookie.split(';')[0] ?? '';
    const session = await call(base, 'GET', '/v1/dashboard/session', undefined, { headers: { cookie: value } });
    expect(session).toMatchObject({ status: 200, json: { viewer: 'ops' } });
    const fleet = await call<FleetSnapshot>(base, 'GET', '/v1/fleet', undefined, { headers: { cookie: value } });
    expect(fleet.status).toBe(200);
    expect(fleet.json.viewer).toBe('ops');
    // A changed cookie opens nothing.
    const forged = value.replace(/\.([A-Za-z0-9_-])/, '.X');
    expect((await call(base, 'GET', '/v1/fleet', undefined, { headers: { cookie: forged } })).status).toBe(401);
    const other = value.replace(/v1\.[^.]+/, `v1.${Buffer.from('robot1').toString('base64url')}`);
    expect((await call(base, 'GET', '/v1/fleet', undefined, { headers: { cookie: other } })).status).toBe(401);

    const logout = await fetch(`${base}/v1/dashboard/logout`, {
      method: 'POST',
      headers: { origin: base, cookie: value },
    });
    expect(logout.status).toBe(204);
    expect(logout.headers.get('set-cookie')).toMatch(
      /^ros2_upload_viewer=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/,
    );
  });

  it('refuses a viewer token that is also an uploader token, at start', async () => {
    await expect(
      startTestServer({ tokens: TOKENS, viewerTokens: ['ops=robot1-token-0123456789abcdef0123456789-0001'] }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/viewer ops and the uploader robot1/),
    });
  });

  it('is open on a loopback server without tokens, as the upload API is', async () => {
    server = await startTestServer();
    expect(await viewerGet(server.url, '/v1/dashboard/session')).toMatchObject({
      status: 200,
      json: { viewer: 'anonymous', open: true },
    });
    const page = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('dashboard/');
    const short = await fetch(`${server.url}/dashboard`, { redirect: 'manual' });
    expect([short.status, short.headers.get('location')]).toEqual([302, 'dashboard/']);
    // Following the redirects ends on the page itself (not in a loop).
    const landed = await fetch(`${server.url}/`);
    expect([landed.status, landed.url]).toEqual([200, `${server.url}/dashboard/`]);
    expect(await landed.text()).toContain('id="login-form"');
  });
});

describe('the fleet view: GET /v1/fleet and the event stream GET /v1/events', () => {
  it('shows robots, uploads in progress, completions, failures with their code, and streams what changes', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    const base = server.url;
    const before = await viewerGet<FleetSnapshot>(base, '/v1/fleet', VIEWER);
    // Robots with a token are listed before they are first seen.
    expect(before.json.robots.map((robot) => [robot.uploader, robot.online, robot.lastSeen])).toEqual([
      ['robot1', false, null],
      ['robot2', false, null],
    ]);

    const headers = { authorization: `Bearer ${VIEWER}` };
    const stream = readEvents(base, headers, (events) =>
      events.some(
        (e) =>
          e.event === 'update' &&
          (e.data as FleetUpdate).completions.some((c) => c.path === 'run/metadata.yaml') &&
          (e.data as FleetUpdate).failures.some((f) => f.code === 'CHUNK_CHECKSUM_MISMATCH'),
      ),
    );
    await waitFor(() => server?.server && true, 'the server');
    const created = await call(
      base,
      'POST',
      '/v1/sessions',
      {
        path: 'run/big.mcap',
        size: 4096,
        fingerprint: `fp1:${'0'.repeat(64)}`,
        chunkSize: 1024,
      },
      { token: ROBOT1 },
    );
    expect(created.status).toBe(201);
    const id = String(created.json.id);
    expect((await putChunk(base, id, 0, Buffer.alloc(1024, 1), { token: ROBOT1 })).status).toBe(200);
    expect(
      (await putChunk(base, id, 1, Buffer.alloc(1024, 2), { token: ROBOT1, checksum: 'crc32:00000000' })).status,
    ).toBe(422);
    const metadata = fixtureFiles('mcap_plain').find((file) => file.name === 'metadata.yaml');
    if (!metadata) throw new Error('no metadata.yaml');
    await putWholeFile(base, 'run/metadata.yaml', metadata.data, ROBOT1);
    const events = await stream;
    expect(events[0]?.event).toBe('snapshot');
    const updates = events.slice(1).map((e) => e.data as FleetUpdate);
    expect(updates.every((u) => u.type === 'update')).toBe(true);

    const snapshot = await viewerGet<FleetSnapshot>(base, '/v1/fleet', VIEWER);
    const robot1 = snapshot.json.robots.find((robot) => robot.uploader === 'robot1');
    expect(robot1).toMatchObject({
      online: true,
      bytesToday: 1024 + metadata.data.length,
      filesToday: 1,
      uploading: 1,
    });
    expect(robot1?.errorsLastHour).toBe(1);
    expect(snapshot.json.uploads).toEqual([
      expect.objectContaining({
        id,
        uploader: 'robot1',
        path: 'run/big.mcap',
        size: 4096,
        receivedBytes: 1024,
        state: 'receiving',
      }),
    ]);
    expect(snapshot.json.completions[0]).toMatchObject({ uploader: 'robot1', path: 'run/metadata.yaml' });
    expect(snapshot.json.failures[0]).toMatchObject({
      uploader: 'robot1',
      code: 'CHUNK_CHECKSUM_MISMATCH',
      status: 422,
      route: 'PUT /v1/sessions/:id/chunks/:index',
    });
    // The bag is known from its metadata.yaml: every split is missing.
    expect(snapshot.json.bags).toEqual([
      expect.objectContaining({
        uploader: 'robot1',
        bag: 'run',
        complete: false,
        expected: 4,
        arrived: 0,
        missingCount: 4,
      }),
    ]);
    expect(snapshot.json.server).toMatchObject({ bags: { complete: 0, incomplete: 1 } });
    expect(snapshot.json.server.freeBytes).toBeGreaterThan(0);

    // A cancelled upload leaves the list in the next update.
    const cancelStream = readEvents(base, headers, (all) =>
      all.some((e) => e.event === 'update' && (e.data as FleetUpdate).removedUploads.includes(id)),
    );
    await waitFor(
      async () => (await viewerGet<FleetSnapshot>(base, '/v1/fleet', VIEWER)).json.uploads.length === 1,
      'upload',
    );
    expect((await call(base, 'DELETE', `/v1/sessions/${id}`, undefined, { token: ROBOT1 })).status).toBe(204);
    await cancelStream;
  });
});
