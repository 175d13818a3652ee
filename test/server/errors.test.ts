import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, createSession, putChunk } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyGet, legacyPost } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  server = await startTestServer({ maxFileSize: 1024 * 1024 });
  files = await createTempDir('error-files');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

/** Sends raw bytes on a fresh connection and returns everything the server answers until it closes. */
function rawRequest(url: string, request: string | Buffer, endAfterWrite = false): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(request);
      if (endAfterWrite) socket.end();
    });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (answer += text));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

describe('client mistakes get a JSON error with the right status, never a 500', () => {
  it('legacy init: ill-typed, missing and malformed fields are 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ filename: 'test.bag', filesize: 'big', chunks: 1 }, /filesize must be an integer, not "big"/],
      [{ filename: 'test.bag', filesize: 10, chunks: 0 }, /chunks must be at least 1/],
      [{ filename: 'test.bag', filesize: -5, chunks: 1 }, /filesize must be at least 0/],
      [{ filename: 'test.bag', filesize: 1.5, chunks: 1 }, /filesize must be an integer/],
      [{ filesize: 10, chunks: 1 }, /filename is required/],
      [{ filename: 42, filesize: 10, chunks: 1 }, /filename must be a string/],
      [
        { filename: 'a.bag', filesize: 10, chunks: 1, checksum: 'xyz' },
        /checksum \(MD5\) must be 32 hexadecimal digits/,
      ],
      [{ filename: 'a.bag', filesize: 10, chunks: 1, compression: 'yes' }, /compression must be true or false/],
      [{ filename: 'a.bag', filesize: 10, chunks: 1, metadata: [1] }, /metadata must be a JSON object/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      const answer = await legacyPost(server.url, '/upload/init', body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json).toMatchObject({ success: false, code: 'INVALID_FIELD' });
      expect(answer.json.error).toMatch(message);
    }
  });

  it('malformed JSON is 400, a non-JSON body 415, an over-long JSON body 413', async () => {
    const malformed = await fetch(`${server.url}/upload/init`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"filename": "x",',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({
      success: false,
      code: 'BAD_REQUEST',
      error: expect.stringMatching(/not valid JSON/),
    });
    const wrongType = await fetch(`${server.url}/upload/init`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'filename=x',
    });
    expect(wrongType.status).toBe(415);
    expect(await wrongType.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    const huge = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'x', pad: 'x'.repeat(200_000) }),
    });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ code: 'BODY_TOO_LARGE' });
    const badCharset = await fetch(`${server.url}/upload/init`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=klingon' },
      body: '{}',
    });
    expect(badCharset.status).toBe(415);
  });

  it('a file over the maximum size is 413 on both APIs', async () => {
    const legacy = await legacyPost(server.url, '/upload/init', {
      filename: 'big.bag',
      filesize: 2 * 1024 * 1024,
      chunks: 2,
    });
    expect(legacy.status).toBe(413);
    expect(legacy.json).toMatchObject({
      success: false,
      code: 'FILE_TOO_LARGE',
      error: expect.stringMatching(/maximum file size of 1048576 bytes/),
    });
    const native = await call(server.url, 'POST', routes.sessions, {
      path: 'big.bin',
      size: 2 * 1024 * 1024,
      fingerprint: `fp1:${'0'.repeat(64)}`,
    });
    expect(native.status).toBe(413);
  });

  it('unknown ids: 404 on status, 400 on legacy chunk and finalize, 404 on native routes', async () => {
    expect((await legacyGet(server.url, '/upload/status/nope')).status).toBe(404);
    const chunk = await legacyChunk(server.url, 'nope', 0, 1, Buffer.from('x'));
    expect(chunk.status).toBe(400);
    expect(chunk.json.error).toMatch(/upload_id "nope" is not a known upload/);
    expect((await legacyPost(server.url, '/upload/finalize', { upload_id: 'nope' })).status).toBe(400);
    expect((await legacyPost(server.url, '/upload/finalize', {})).json).toMatchObject({
      code: 'INVALID_FIELD',
      error: 'upload_id is required',
    });
    expect((await call(server.url, 'GET', routes.session('nope'))).status).toBe(404);
    expect((await putChunk(server.url, 'nope', 0, Buffer.from('x'))).status).toBe(404);
    expect((await call(server.url, 'POST', routes.complete('nope'), { sha256: 'a'.repeat(64) })).status).toBe(404);
    expect((await call(server.url, 'DELETE', routes.session('nope'))).status).toBe(404);
    expect((await call(server.url, 'GET', routes.file('never/stored.bin'))).status).toBe(404);
  });

  it('legacy chunks: bad index, wrong chunk_total, no part, non-multipart body: refused, not counted', async () => {
    const init = await legacyPost(server.url, '/upload/init', { filename: 'range.bag', filesize: 10, chunks: 2 });
    const id = init.json.upload_id as string;
    const outOfRange = await legacyChunk(server.url, id, 2, 2, Buffer.from('12345'));
    expect(outOfRange.status).toBe(400);
    expect(outOfRange.json).toMatchObject({ code: 'CHUNK_INDEX_OUT_OF_RANGE' });
    expect((await legacyChunk(server.url, id, 0, 3, Buffer.from('12345'))).json.error).toMatch(
      /chunk_total 3 does not match the 2 chunks/,
    );
    const form = new FormData();
    form.append('upload_id', id);
    form.append('chunk_index', '0');
    form.append('chunk_total', '2');
    const noPart = await fetch(`${server.url}/upload/chunk`, { method: 'POST', body: form });
    expect(noPart.status).toBe(400);
    const json = await fetch(`${server.url}/upload/chunk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(415);
    const tooBig = await legacyChunk(server.url, id, 0, 2, Buffer.alloc(11));
    expect(tooBig.status).toBe(400);
    const status = await legacyGet(server.url, `/upload/status/${id}`);
    expect(status.json).toMatchObject({ received_chunks: 0, received_indexes: [] });
    const finalize = await legacyPost(server.url, '/upload/finalize', { upload_id: id });
    expect(finalize.status).toBe(400);
    expect(finalize.json).toMatchObject({ code: 'CHUNKS_MISSING', missing: [0, 1] });
  });

  it('native chunks: bad index, missing checksum header, wrong type, encoding or length are refused', async () => {
    const file = path.join(files.path, 'n.bin');
    await writeRandomFile(file, 4096);
    const id = (await createSession(server.url, file, { path: 'n.bin', chunkSize: 1024 })).json.id as string;
    const data = Buffer.alloc(1024, 1);
    expect((await putChunk(server.url, id, 4, data)).json).toMatchObject({ code: 'CHUNK_INDEX_OUT_OF_RANGE' });
    expect((await putChunk(server.url, id, -1, data)).status).toBe(400);
    expect(
      (
        await call(server.url, 'PUT', `/v1/sessions/${id}/chunks/1x`, data, {
          headers: { 'content-type': 'application/octet-stream' },
        })
      ).status,
    ).toBe(400);
    expect((await putChunk(server.url, id, 0, data, { checksum: 'md5:abc' })).json).toMatchObject({
      code: 'INVALID_FIELD',
    });
    expect((await putChunk(server.url, id, 0, data, { headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await putChunk(server.url, id, 0, data, { headers: { 'content-encoding': 'br' } })).status).toBe(415);
    expect((await putChunk(server.url, id, 0, Buffer.alloc(1000))).json).toMatchObject({ code: 'CHUNK_SIZE_MISMATCH' });
    expect((await putChunk(server.url, id, 0, data, { headers: { 'content-encoding': 'gzip' } })).json).toMatchObject({
      code: 'BAD_REQUEST',
    });
    const { gzipSync } = await import('node:zlib');
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024));
    expect(
      (await putChunk(server.url, id, 0, bomb, { headers: { 'content-encoding': 'gzip' }, checksum: 'crc32:00000000' }))
        .json,
    ).toMatchObject({ code: 'CHUNK_SIZE_MISMATCH' });
    const ok = await putChunk(server.url, id, 0, gzipSync(data), {
      headers: { 'content-encoding': 'gzip' },
      checksum: (await import('../helpers/native-upload.js')).crcHeader(data),
    });
    expect(ok.json).toMatchObject({ index: 0, duplicate: false });
    const bad = await call(server.url, 'POST', routes.sessions, { path: 'x.bin', size: 10, fingerprint: 'fp1:nope' });
    expect(bad.json).toMatchObject({ code: 'INVALID_FIELD', error: expect.stringMatching(/fingerprint/) });
    expect(
      (
        await call(server.url, 'POST', routes.sessions, {
          path: 'x.bin',
          size: 10,
          fingerprint: `fp1:${'0'.repeat(64)}`,
          chunkSize: 10,
        })
      ).json.error,
    ).toMatch(/chunkSize must be at least 1024/);
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: 'abc' })).json.error).toMatch(
      /sha256 must be 64 hexadecimal digits/,
    );
  });

  it('unknown routes are 404 JSON; malformed HTTP gets a JSON 400 and the server stays up', async () => {
    const unknown = await fetch(`${server.url}/does/not/exist`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ success: false, code: 'ROUTE_NOT_FOUND' });
    expect((await fetch(`${server.url}/upload/init`)).status).toBe(404);
    const badLength = await rawRequest(
      server.url,
      'POST /upload/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
    );
    expect(badLength).toMatch(/^HTTP\/1\.1 400/);
    expect(badLength).toContain('"success":false');
    const twoLengths = await rawRequest(
      server.url,
      'POST /upload/init HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
    );
    expect(twoLengths).toMatch(/^HTTP\/1\.1 400/);
    const garbage = await rawRequest(server.url, 'GARBAGE\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    const badPercent = await fetch(`${server.url}/v1/sessions/%E0%A4%A/chunks/0`, { method: 'PUT', body: 'x' });
    expect(badPercent.status).toBeLessThan(500);
    // A body cut short: the client says 100 bytes, sends 10, and hangs up.
    const cut = await rawRequest(
      server.url,
      'POST /upload/init HTTP/1.1\r\nHost: x\r\n' +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"filename"',
      true,
    );
    expect(cut).not.toMatch(/ 500 /);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});
