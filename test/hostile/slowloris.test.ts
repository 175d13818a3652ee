import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { createLayout, startFuzzServer, type FuzzLayout, type FuzzServer } from './support/fuzz-target.js';
import { fdCount, healthStatus, isRunning, rssBytes, serverComplaints } from './support/server-watch.js';
import { stillOpen, trickleMany, type Trickler } from './support/tricklers.js';

/**
 * Slowloris: many connections that trickle their headers or their bodies are cut off by the
 * server's timeouts (set short here: the defaults suit 5 GB uploads over slow links, see
 * docs/server.md), while a well-behaved upload on other connections completes meanwhile; and a flood of
 * connections is held to maxConnections, so file descriptors and memory stay bounded.
 */

const HEADERS_TIMEOUT = 6;
const REQUEST_TIMEOUT = 10;
const IDLE_TIMEOUT = 3;

let temp: TempDir;
let layout: FuzzLayout;
let server: FuzzServer;
let files: string;

beforeAll(async () => {
  temp = await createTempDir('hostile-slowloris');
  layout = await createLayout(temp.path);
  files = path.join(temp.path, 'files');
  server = await startFuzzServer(layout, 'S', {
    anonymous: false,
    args: [
      '--headers-timeout',
      String(HEADERS_TIMEOUT),
      '--request-timeout',
      String(REQUEST_TIMEOUT),
      '--idle-timeout',
      String(IDLE_TIMEOUT),
      '--keep-alive-timeout',
      '2',
      '--log-level',
      'info',
    ],
  });
});

afterAll(async () => {
  server?.client.close();
  await server?.process.stop();
  await temp?.remove();
});

const port = (url: string): number => Number(new URL(url).port);

/** A well-behaved native upload (robot1): the file must arrive byte-identical. */
async function legitUpload(name: string): Promise<void> {
  const file = path.join(files, name);
  const sha = await writeRandomFile(file, 64 * 1024);
  const result = await uploadFile(server.url, file, `legit/${name}`, {
    token: server.tokens.robot1,
    chunkSize: 4096,
    parallel: 2,
  });
  expect(result.complete.status, JSON.stringify(result.complete.json)).toBe(200);
  expect(await sha256OfFile(path.join(server.root, 'completed', 'robot1', 'legit', name))).toBe(sha);
}

async function expectAllCutOff(tricklers: readonly Trickler[], what: string): Promise<void> {
  // Generous: the cut-off comes from the server's own timer (a few seconds here); a loaded CI machine may be slow.
  await waitFor(
    () => stillOpen(tricklers) === 0,
    `every ${what} connection to be closed by the server (${stillOpen(tricklers)} still open)`,
    60_000,
    100,
  );
}

describe('slowloris: trickling clients are cut off by the timeouts, a well-behaved upload still completes', () => {
  it('120 connections trickling their headers are answered 408 and closed at headersTimeout', async () => {
    const fdsBefore = fdCount(server.process.child.pid!);
    const tricklers = await trickleMany(120, {
      port: port(server.url),
      opening: 'PUT /v1/sessions/x/chunks/0 HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      piece: 'X-Slow: 1\r\n',
      everyMs: 500,
    });
    await legitUpload('during-headers.bin');
    // The upload went through while the trickling connections were held open, not after.
    expect(stillOpen(tricklers)).toBeGreaterThanOrEqual(100);
    await expectAllCutOff(tricklers, 'header-trickling');
    const answered = tricklers.filter((t) => t.received.startsWith('HTTP/1.1 408')).length;
    expect(answered, tricklers.map((t) => t.received.slice(0, 40)).join(' | ')).toBeGreaterThanOrEqual(100);
    expect(tricklers.find((t) => t.received.startsWith('HTTP/1.1 408'))!.received).toContain('"code":"TIMEOUT"');
    await waitFor(() => fdCount(server.process.child.pid!) <= fdsBefore + 4, 'the server to release the connections');
    expect(serverComplaints(server.process)).toEqual([]);
  });

  it('trickling bodies are cut at requestTimeout (idleTimeout if pausing longer); nothing partial stays', async () => {
    const fdsBefore = fdCount(server.process.child.pid!);
    const robot1 = { token: server.tokens.robot1 };
    // Native chunks: one session of 100 chunks of 1 KiB; each trickler sends a different chunk
    // (a second request for the same chunk would win over the first, by design).
    const created = await call(
      server.url,
      'POST',
      routes.sessions,
      { path: 'slow/native.bin', size: 100 * 1024, fingerprint: `fp1:${'4'.repeat(64)}`, chunkSize: 1024 },
      robot1,
    );
    expect(created.status).toBe(201);
    const sessionId = created.json.id as string;
    const init = await legacyPost(
      server.url,
      '/upload/init',
      { filename: 'slow/legacy.bin', filesize: 1024 * 1024, chunks: 1 },
      server.tokens.robot1,
    );
    const uploadId = init.json.upload_id as string;
    const auth = `Authorization: Bearer ${server.tokens.robot1}\r\n`;
    const chunkHead = (index: number): string =>
      `PUT /v1/sessions/${sessionId}/chunks/${index} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}` +
      `Content-Type: application/octet-stream\r\nX-Chunk-Checksum: crc32:00000000\r\nContent-Length: 1024\r\n\r\n`;
    const form =
      `--b\r\nContent-Disposition: form-data; name="upload_id"\r\n\r\n${uploadId}\r\n` +
      `--b\r\nContent-Disposition: form-data; name="chunk_index"\r\n\r\n0\r\n` +
      `--b\r\nContent-Disposition: form-data; name="chunk_total"\r\n\r\n1\r\n` +
      `--b\r\nContent-Disposition: form-data; name="chunk"; filename="c"\r\n\r\n`;
    const legacyHead =
      `POST /upload/chunk HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}` +
      `Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 2000000\r\n\r\n${form}`;
    const p = port(server.url);
    const native: Trickler[] = [];
    for (let i = 0; i < 60; i += 1)
      native.push(...(await trickleMany(1, { port: p, opening: chunkHead(i), piece: 'x', everyMs: 500 })));
    const legacy = await trickleMany(40, { port: p, opening: legacyHead, piece: 'y', everyMs: 500 });
    // No token: refused (401) at once; the body that keeps trickling after the answer is drained
    // and cut like any other.
    const refused = await trickleMany(20, { port: p, opening: legacyHead.replace(auth, ''), piece: 'z', everyMs: 500 });
    // Pauses longer than idleTimeout between bytes.
    const pausing: Trickler[] = [];
    for (let i = 80; i < 100; i += 1)
      pausing.push(
        ...(await trickleMany(1, { port: p, opening: chunkHead(i), piece: 'x', everyMs: (IDLE_TIMEOUT + 2) * 1000 })),
      );
    const all = [...native, ...legacy, ...refused, ...pausing];

    await legitUpload('during-bodies.bin');
    expect(stillOpen(all)).toBeGreaterThanOrEqual(120);
    await expectAllCutOff(all, 'body-trickling');
    // Each received the refusal before (401) or the timeout answer, or was closed for idling.
    expect(refused.every((t) => t.received.startsWith('HTTP/1.1 401'))).toBe(true);
    expect(native.filter((t) => t.received.includes(' 408 ')).length).toBeGreaterThanOrEqual(50);
    expect(pausing.every((t) => t.received === '' || t.received.includes(' 408 '))).toBe(true);
    // Nothing that trickled in was acknowledged.
    const status = await call(server.url, 'GET', routes.session(sessionId), undefined, robot1);
    expect(status.json).toMatchObject({ state: 'open', received: [] });
    const legacyStatus = await call(server.url, 'GET', `/upload/status/${uploadId}`, undefined, robot1);
    expect(legacyStatus.json).toMatchObject({ received_chunks: 0 });
    await waitFor(
      () => fdCount(server.process.child.pid!) <= fdsBefore + 4,
      `the server to release the connections and their files ` +
        `(${fdCount(server.process.child.pid!)} open, ${fdsBefore} before)`,
    );
    expect(serverComplaints(server.process)).toEqual([]);
    await legitUpload('after-bodies.bin');
  });
});

describe('connection flood: maxConnections bounds file descriptors and memory', () => {
  let flood: FuzzServer;
  beforeAll(async () => {
    flood = await startFuzzServer(layout, 'F', {
      anonymous: false,
      args: ['--max-connections', '50', '--headers-timeout', '3', '--request-timeout', '6', '--idle-timeout', '3'],
    });
  });
  afterAll(async () => {
    flood?.client.close();
    await flood?.process.stop();
  });

  it('400 idle connections, 600 with 8 KiB of unfinished headers: at most 50 kept, server serves again', async () => {
    const pid = flood.process.child.pid!;
    const fdsBefore = fdCount(pid);
    const rssBefore = rssBytes(pid);
    const sockets: net.Socket[] = [];
    let peakFds = 0;
    let peakRss = 0;
    const sample = (): void => {
      peakFds = Math.max(peakFds, fdCount(pid));
      peakRss = Math.max(peakRss, rssBytes(pid));
    };
    const open = (payload: string): Promise<void> =>
      new Promise((resolve) => {
        const socket = net.connect({ port: port(flood.url), host: '127.0.0.1' }, () => {
          if (payload) socket.write(payload);
          resolve();
        });
        socket.on('error', () => resolve());
        sockets.push(socket);
      });
    for (let i = 0; i < 400; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => open('')));
      sample();
    }
    const bigHeaders = `POST /upload/init HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ${'f'.repeat(8 * 1024)}\r\n`;
    for (let i = 0; i < 600; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => open(bigHeaders)));
      sample();
    }
    expect(isRunning(flood.process)).toBe(true);
    // The cap: 50 client connections (plus the server's own files: database, log, listening socket).
    expect(peakFds).toBeLessThanOrEqual(fdsBefore + 50 + 4);
    expect(peakRss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    console.log(
      `connection flood: 1000 connections against maxConnections 50: peak ${peakFds - fdsBefore} ` +
        `extra descriptors, RSS +${((peakRss - rssBefore) / 1024 / 1024).toFixed(1)} MiB`,
    );

    // Once the held connections time out, the server answers again and an upload completes.
    await waitFor(
      async () => (await healthStatus(flood.url)) === 200,
      'the flooded server to answer /health again',
      60_000,
      200,
    );
    const file = path.join(files, 'after-flood.bin');
    const sha = await writeRandomFile(file, 32 * 1024);
    const result = await uploadFile(flood.url, file, 'after-flood.bin', {
      token: flood.tokens.robot2,
      chunkSize: 4096,
    });
    expect(result.complete.json).toMatchObject({ state: 'complete', sha256: sha });
    for (const socket of sockets) socket.destroy();
    await waitFor(() => fdCount(pid) <= fdsBefore + 4, 'the flooded server to release every connection');
    const complaints = serverComplaints(flood.process);
    expect(complaints).toEqual([]);
    expect(flood.process.stdout()).toContain('"event":"connections_refused"');
  });

  it('with maxConnections 0 the same flood costs a descriptor per connection: the cap is what bounds it', async () => {
    const open = await startFuzzServer(layout, 'U', {
      anonymous: false,
      args: ['--max-connections', '0', '--headers-timeout', '3', '--request-timeout', '6'],
    });
    const sockets: net.Socket[] = [];
    try {
      const pid = open.process.child.pid!;
      const fdsBefore = fdCount(pid);
      for (let i = 0; i < 200; i += 50) {
        await Promise.all(
          Array.from(
            { length: 50 },
            () =>
              new Promise<void>((resolve) => {
                const socket = net.connect({ port: port(open.url), host: '127.0.0.1' }, () => resolve());
                socket.on('error', () => resolve());
                sockets.push(socket);
              }),
          ),
        );
      }
      await waitFor(() => fdCount(pid) >= fdsBefore + 200, 'the unlimited server to hold all 200 connections');
    } finally {
      for (const socket of sockets) socket.destroy();
      open.client.close();
      await open.process.stop();
    }
  });
});
