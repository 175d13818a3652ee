import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatChunkChecksum, Crc32 } from '../../common/protocol/chunk-checksum.js';
import { headers as headerNames, routes } from '../../common/protocol/native-protocol.js';
import { requestChecksum } from '../../common/protocol/request-checksum.js';
import { createUploadHandler } from '../../server/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { call } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { createWorld, EventLog, KiB, waitForCompletion } from '../engine/harness.js';
import { jsonOf, RawHttp, type RawResponse } from './support/raw-http.js';

/**
 * X-Request-Checksum, server side (the request-integrity design; issue 11 points 2 and 8): a
 * request whose request line, covered header or JSON body lost a byte on the wire after the
 * client computed its checksum is refused with 400 REQUEST_CHECKSUM_MISMATCH and changes
 * nothing. Before, such a request stored a file under another name, wrote a chunk at another
 * index, or reset a session over a damaged SHA-256 digit.
 */

let server: TestServer;
let raw: RawHttp;

beforeAll(async () => {
  server = await startTestServer();
  raw = new RawHttp(server.url);
});
afterAll(async () => {
  raw?.close();
  await server?.close();
});

interface Spec {
  method: string;
  target: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** The body is JSON (covered by the checksum) rather than raw bytes. */
  json?: boolean;
  /** The X-Request-Checksum to send instead of the right one ('' sends none). */
  checksum?: string;
}

/** The request's bytes as a client computes and sends them, with its X-Request-Checksum. */
function wire(spec: Spec): Buffer {
  const body = spec.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { ...spec.headers };
  if (spec.body !== undefined) headers['content-length'] = String(body.length);
  if (spec.json) headers['content-type'] = 'application/json';
  const checksum =
    spec.checksum ??
    requestChecksum({
      method: spec.method,
      target: spec.target,
      headers,
      ...(spec.json ? { jsonBody: body } : {}),
    });
  if (checksum !== '') headers[headerNames.requestChecksum] = checksum;
  const lines = [`${spec.method} ${spec.target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

/** `bytes` with the first `from` after `after` replaced by `to` (same length: the framing stays valid). */
function damage(bytes: Buffer, after: string, from: string, to: string): Buffer {
  const text = bytes.toString('latin1');
  const start = text.indexOf(after);
  const at = text.indexOf(from, start + after.length);
  expect(start, `${after} in the request`).toBeGreaterThanOrEqual(0);
  expect(at, `${from} after ${after}`).toBeGreaterThan(start);
  // The damage must land where the test means it to (a header line, the request line), not in a later header.
  if (start < text.indexOf('\r\n\r\n')) {
    expect(at, `${from} on the line of ${after}`).toBeLessThan(text.indexOf('\r\n', start));
  }
  expect(to.length).toBe(from.length);
  return Buffer.from(text.slice(0, at) + to + text.slice(at + from.length), 'latin1');
}

async function send(bytes: Buffer, method: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const exchange = await raw.send({ pieces: [bytes], method, mode: 'response' });
  const response = exchange.responses[0] as RawResponse | undefined;
  expect(response, `an answer (hung: ${exchange.hung}, closed: ${exchange.closed})`).toBeDefined();
  return { status: response!.status, json: jsonOf(response!) ?? {} };
}

function expectDamaged(answer: { status: number; json: Record<string, unknown> }): void {
  expect(answer.status, JSON.stringify(answer.json)).toBe(400);
  expect(answer.json).toMatchObject({ success: false, code: 'REQUEST_CHECKSUM_MISMATCH' });
  expect(answer.json.error).toMatch(/damaged in transit.*send it again/);
}

function stored(): string[] {
  const folder = path.join(server.uploadDir, 'completed');
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)))
    .sort();
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const crc = (data: Buffer): string => formatChunkChecksum(new Crc32().update(data).value);

function putFile(target: string, data: Buffer, extra: Record<string, string> = {}): Spec {
  return {
    method: 'PUT',
    target,
    headers: {
      'content-type': 'application/octet-stream',
      [headerNames.contentSha256]: sha256(data),
      ...extra,
    },
    body: data,
  };
}

/** Opens a session for `data` in `chunkSize` chunks (with a right checksum). */
async function openSession(remote: string, data: Buffer, chunkSize: number): Promise<string> {
  const body = Buffer.from(
    JSON.stringify({ path: remote, size: data.length, fingerprint: `fp1:${'ab'.repeat(32)}`, chunkSize }),
  );
  const answer = await send(wire({ method: 'POST', target: routes.sessions, body, json: true }), 'POST');
  expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  return answer.json.id as string;
}

function chunkOf(data: Buffer, index: number, chunkSize: number): Buffer {
  return data.subarray(index * chunkSize, (index + 1) * chunkSize);
}

function putChunk(id: string, index: number, chunk: Buffer): Spec {
  return {
    method: 'PUT',
    target: routes.chunk(id, index),
    headers: { 'content-type': 'application/octet-stream', [headerNames.chunkChecksum]: crc(chunk) },
    body: chunk,
  };
}

describe('X-Request-Checksum on the server', { timeout: 60_000 }, () => {
  it('/health announces it and keeps the legacy fields', async () => {
    const health = await call(server.url, 'GET', '/health');
    expect(health.json).toMatchObject({ status: 'ok', protocol: 1 });
    expect(health.json.features).toEqual(expect.arrayContaining(['chunked-upload', 'sha256', 'request-checksum']));
  });

  it('a whole-file PUT whose path lost a byte stores nothing under either name; intact, it is stored', async () => {
    const data = Buffer.from('the robot recorded this');
    const request = wire(putFile('/v1/files/run1/a.mcap', data));
    expectDamaged(await send(damage(request, 'PUT ', '/a.mcap', '/c.mcap'), 'PUT'));
    // One flipped bit of the digest header, and of the covered metadata header.
    expectDamaged(await send(damage(request, `${headerNames.contentSha256}: `, sha256(data)[5]!, 'x'), 'PUT'));
    const withMetadata = wire(
      putFile('/v1/files/run1/a.mcap', data, {
        [headerNames.uploadMetadata]: Buffer.from('{"robot":"r1"}').toString('base64url'),
      }),
    );
    expectDamaged(await send(damage(withMetadata, `${headerNames.uploadMetadata}: `, 'e', 'f'), 'PUT'));
    expect(stored()).toEqual([]);
    const intact = await send(request, 'PUT');
    expect(intact.status, JSON.stringify(intact.json)).toBe(201);
    expect(intact.json).toMatchObject({ path: 'run1/a.mcap', sha256: sha256(data) });
    expect(stored()).toEqual(['anonymous/run1/a.mcap']);
  });

  it('a chunk whose index (or CRC header) lost a byte is not written; the session keeps what it had', async () => {
    const chunkSize = 1024;
    const data = Buffer.alloc(3 * chunkSize, 7)
      .fill(9, chunkSize)
      .fill(5, 2 * chunkSize);
    const id = await openSession('run1/chunks.mcap', data, chunkSize);
    const one = wire(putChunk(id, 1, chunkOf(data, 1, chunkSize)));
    // `/chunks/1` became `/chunks/2`: same length, so without the checksum chunk 1's bytes would land at chunk 2.
    expectDamaged(await send(damage(one, 'PUT ', '/chunks/1', '/chunks/2'), 'PUT'));
    // One hex digit of the chunk's CRC header changed into another (the CRC itself would then refuse the chunk
    // as damaged data and make the client re-read it; the request checksum names the real cause).
    const digit = crc(chunkOf(data, 1, chunkSize)).slice('crc32:'.length)[0]!;
    const other = digit === '0' ? '1' : '0';
    expectDamaged(await send(damage(one, `${headerNames.chunkChecksum}: crc32:`, digit, other), 'PUT'));
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({ state: 'open', received: [] });
    for (const index of [0, 1, 2]) {
      const answer = await send(wire(putChunk(id, index, chunkOf(data, index, chunkSize))), 'PUT');
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    }
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({ received: [0, 1, 2] });

    // complete: a damaged digit of the SHA-256 no longer resets the session (every chunk would be sent again).
    const complete = (): Buffer =>
      wire({
        method: 'POST',
        target: routes.complete(id),
        body: Buffer.from(JSON.stringify({ sha256: sha256(data) })),
        json: true,
      });
    expectDamaged(await send(damage(complete(), '"sha256":"', sha256(data).slice(0, 2), 'ff'), 'POST'));
    // A damaged byte that breaks the JSON is damage too, not the client's malformed JSON.
    expectDamaged(await send(damage(complete(), '{', '"sha256"', "'sha256'"), 'POST'));
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({
      state: 'open',
      received: [0, 1, 2],
    });
    const done = await send(complete(), 'POST');
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    expect(done.json).toMatchObject({ state: 'complete', path: 'run1/chunks.mcap', sha256: sha256(data) });
  });

  it('a create whose JSON path lost a byte opens no session; a damaged cancel cancels nothing', async () => {
    const body = Buffer.from(
      JSON.stringify({ path: 'run2/x.mcap', size: 10, fingerprint: `fp1:${'cd'.repeat(32)}`, chunkSize: 1024 }),
    );
    const create = wire({ method: 'POST', target: routes.sessions, body, json: true });
    expectDamaged(await send(damage(create, '"path":"', 'run2', 'run3'), 'POST'));
    const created = await send(create, 'POST');
    // 201 (new), not 200 (resumed): the damaged request created nothing.
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const id = created.json.id as string;
    const cancel = wire({ method: 'DELETE', target: routes.session(id) });
    const last = id.at(-1) === '0' ? '1' : '0';
    expectDamaged(await send(damage(cancel, 'DELETE ', id, id.slice(0, -1) + last), 'DELETE'));
    expect((await call(server.url, 'GET', routes.session(id))).status).toBe(200);
    expect((await send(cancel, 'DELETE')).status).toBe(204);
    expect((await call(server.url, 'GET', routes.session(id))).status).toBe(404);
  });

  it('a malformed header is 400 INVALID_FIELD; no header is accepted as before (curl, older agents)', async () => {
    const data = Buffer.from('no checksum at all');
    for (const value of ['crc32:123', 'md5:00000000', 'crc32:0000000g', 'crc32:00000000,crc32:00000000']) {
      const answer = await send(wire({ ...putFile('/v1/files/run3/m.bin', data), checksum: value }), 'PUT');
      expect(answer.status, value).toBe(400);
      expect(answer.json).toMatchObject({ code: 'INVALID_FIELD' });
      expect(answer.json.error).toContain(headerNames.requestChecksum);
    }
    const plain = await send(wire({ ...putFile('/v1/files/run3/m.bin', data), checksum: '' }), 'PUT');
    expect(plain.status).toBe(201);
  });

  it('a bit flipped on the wire (a real TCP proxy between client and server) is caught', async () => {
    const proxy = await FaultProxy.start({ port: server.server.port });
    const through = new RawHttp(`http://127.0.0.1:${proxy.port}`);
    try {
      const data = Buffer.from('flipped on the way');
      const request = wire(putFile('/v1/files/run4/wire.bin', data));
      // Bit 0 of the `w` of `wire.bin` in the request line: `w` (0x77) arrives as `v` (0x76).
      const offset = request.indexOf('wire.bin');
      proxy.setFaults({ flipBitAt: { offset, bit: 0, times: 1 } });
      const exchange = await through.send({ pieces: [request], method: 'PUT', mode: 'response' });
      expect(proxy.stats.flips).toBe(1);
      const answer = exchange.responses[0]!;
      expect(answer.status).toBe(400);
      expect(jsonOf(answer)).toMatchObject({ code: 'REQUEST_CHECKSUM_MISMATCH' });
      expect(stored().filter((file) => file.startsWith('anonymous/run4/'))).toEqual([]);
      const again = await through.send({ pieces: [request], method: 'PUT', mode: 'response' });
      expect(again.responses[0]!.status).toBe(201);
      expect(stored().filter((file) => file.startsWith('anonymous/run4/'))).toEqual(['anonymous/run4/wire.bin']);
    } finally {
      through.close();
      await proxy.close();
    }
  });

  it('covers the request-target as sent, mount path included, when mounted in a host server', async () => {
    const dir = await createTempDir('checksum-mounted');
    const handler = await createUploadHandler({
      uploadDir: dir.path,
      allowAnonymous: true,
      basePath: '/uploads',
      logLevel: 'silent',
      rateLimit: false,
    });
    const host = http.createServer((req, res) => handler.handle(req, res));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    const client = new RawHttp(`http://127.0.0.1:${(host.address() as AddressInfo).port}`);
    try {
      const data = Buffer.from('mounted');
      const request = wire(putFile('/uploads/v1/files/run5/m.bin', data));
      const damaged = await client.send({
        pieces: [damage(request, 'PUT ', 'm.bin', 'n.bin')],
        method: 'PUT',
        mode: 'response',
      });
      expect(jsonOf(damaged.responses[0]!)).toMatchObject({ code: 'REQUEST_CHECKSUM_MISMATCH' });
      const intact = await client.send({ pieces: [request], method: 'PUT', mode: 'response' });
      expect(intact.responses[0]!.status).toBe(201);
    } finally {
      client.close();
      await new Promise<void>((resolve) => host.close(() => resolve()));
      await handler.close();
      await dir.remove();
    }
  });
});

describe('the agent and the server agree on the request checksum', { timeout: 60_000 }, () => {
  it('bytes the real agent sent, damaged on the way, are refused by the server itself and sent again', async () => {
    // agent -> fault proxy -> the real server (no front emulating the check)
    const world = await createWorld();
    try {
      const chunk = 64 * KiB;
      const big = await world.randomFile('big.bin', 6 * chunk);
      const small = await world.randomFile('small.bin', 1000);
      world.proxy.setFaults({
        flipInPattern: [
          // The last byte of each pattern loses bit 0: chunk 3 is addressed as chunk 2, a digit of
          // the SHA-256 at completion changes, and the small file's name arrives as `smalm.bin`.
          { pattern: '/chunks/3' },
          { pattern: `{"sha256":"${big.sha256.slice(0, 12)}` },
          { pattern: 'PUT /v1/files/run1/small' },
        ],
      });
      const manager = world.manager({ chunkSize: chunk });
      const log = new EventLog(manager);
      await manager.start();
      const ids = [
        await manager.addUpload(big.path, { remotePath: 'run1/big.bin' }),
        await manager.addUpload(small.path, { remotePath: 'run1/small.bin' }),
      ];
      for (const id of ids) await waitForCompletion(manager, id);
      expect(world.proxy.stats.flips).toBe(3);
      expect(await world.storedSha('run1/big.bin')).toBe(big.sha256);
      expect(await world.storedSha('run1/small.bin')).toBe(small.sha256);
      // Nothing under a damaged name: the server acted on none of the damaged requests.
      const completed = path.join(world.server.uploadDir, 'completed', 'anonymous', 'run1');
      expect(readdirSync(completed).sort()).toEqual(['big.bin', 'small.bin']);
      const refusals = log.of('retrying').filter((retry) => retry.reason.includes('REQUEST_CHECKSUM_MISMATCH'));
      expect(refusals).toHaveLength(3);
    } finally {
      await world.close();
    }
  });
});
