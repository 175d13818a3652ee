import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../helpers/native-upload.js';
import { legacyUploadFile } from '../helpers/legacy-client.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { createLayout, startFuzzServer, type FuzzServer } from './support/fuzz-target.js';
import { multipartBody, toWire, type RequestSpec } from './support/http-bytes.js';
import { jsonOf, type RawExchange } from './support/raw-http.js';
import { fdCount, healthStatus, isRunning, serverComplaints } from './support/server-watch.js';

/**
 * The defects the hostile tests found, one deterministic test each, against a real server
 * process (a crash must show as a dead process, not take the test runner down).
 */

let temp: TempDir;
let server: FuzzServer;

beforeAll(async () => {
  temp = await createTempDir('hostile-regressions');
  // Debug logs show when a refused request was handled (request_refused), so a test can wait for it.
  server = await startFuzzServer(await createLayout(temp.path), 'R', {
    anonymous: true,
    args: ['--compression-threshold', '0', '--log-level', 'debug'],
  });
});

afterAll(async () => {
  server?.client.close();
  await server?.process.stop();
  await temp?.remove();
});

async function send(spec: Omit<RequestSpec, 'framing'> & { framing?: RequestSpec['framing'] }): Promise<RawExchange> {
  const full: RequestSpec = { framing: { kind: 'length' }, ...spec, headers: [['Host', '127.0.0.1'], ...spec.headers] };
  return server.client.send({ ...toWire(full), method: full.method });
}

async function json(
  method: string,
  target: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const exchange = await send({
    method,
    target,
    headers: [['Content-Type', 'application/json']],
    body: Buffer.from(JSON.stringify(body)),
  });
  const response = exchange.responses[0]!;
  return { status: response.status, json: jsonOf(response) };
}

async function expectHealthy(): Promise<void> {
  expect(isRunning(server.process), server.process.stderr()).toBe(true);
  expect(await healthStatus(server.url)).toBe(200);
  expect(serverComplaints(server.process)).toEqual([]);
}

describe('defects found by the hostile tests stay fixed', () => {
  it('a multipart chunk form that ends without its closing boundary is a 400, and the process stays up', async () => {
    const init = await json('POST', '/upload/init', { filename: 'regress/unclosed.bin', filesize: 10, chunks: 1 });
    expect(init.status).toBe(200);
    for (const uploadId of ['00000000-0000-4000-8000-000000000000', String(init.json!.upload_id)]) {
      const body = multipartBody(
        'b0undary',
        [
          { name: 'upload_id', value: uploadId },
          { name: 'chunk_index', value: '0' },
          { name: 'chunk_total', value: '1' },
          { name: 'chunk', value: Buffer.from('0123456789'), filename: 'c', contentType: 'application/octet-stream' },
        ],
        false,
      );
      const exchange = await send({
        method: 'POST',
        target: '/upload/chunk',
        headers: [['Content-Type', 'multipart/form-data; boundary=b0undary']],
        body,
      });
      expect(exchange.responses[0]?.status, uploadId).toBe(400);
      // An unknown id is named first; for a real one the form's end is the problem.
      expect(jsonOf(exchange.responses[0]!)).toMatchObject({
        success: false,
        ...(uploadId === init.json!.upload_id
          ? { code: 'BAD_REQUEST', error: expect.stringMatching(/Unexpected end of/) }
          : { code: 'INVALID_FIELD' }),
      });
    }
    await expectHealthy();
  });

  it('a client hanging up mid-chunk or before its chunk was handled is no server fault (no 500 logged)', async () => {
    const created = await json('POST', '/v1/sessions', {
      path: 'regress/cut.bin',
      size: 4096,
      fingerprint: `fp1:${'1'.repeat(64)}`,
      chunkSize: 4096,
    });
    expect(created.status).toBe(201);
    const chunk = `/v1/sessions/${String(created.json!.id)}/chunks/0`;
    const headers: [string, string][] = [
      ['Content-Type', 'application/octet-stream'],
      ['X-Chunk-Checksum', 'crc32:00000000'],
    ];
    const handled = (): number =>
      server.process
        .stdout()
        .split('\n')
        .filter((line) => line.includes(`"path":"${chunk}"`) && /"event":"request_(refused|failed)"/.test(line)).length;
    const before = handled();
    // 'cut' declares one byte more than the body it is given, then sends only part of it.
    await send({
      method: 'PUT',
      target: chunk,
      headers,
      body: Buffer.alloc(4095, 1),
      framing: { kind: 'cut', keep: 0.25, abrupt: false },
    });
    await waitFor(() => handled() >= before + 1, 'the first cut chunk to be handled');
    await send({
      method: 'PUT',
      target: chunk,
      headers,
      body: Buffer.alloc(4095, 1),
      framing: { kind: 'cut', keep: 0.5, abrupt: true },
    });
    await waitFor(() => handled() >= before + 2, 'the second cut chunk to be handled');
    // A whole (empty) body followed by garbage: Node closes the connection for the garbage while the
    // chunk is being handled, so its body stream fails although all of it had arrived.
    for (const [i, encoding] of ([[], [['Content-Encoding', 'gzip']]] as [string, string][][]).entries()) {
      const head = [
        `PUT ${chunk} HTTP/1.1`,
        'Host: 127.0.0.1',
        ...headers.map(([n, v]) => `${n}: ${v}`),
        ...encoding.map(([n, v]) => `${n}: ${v}`),
        'Content-Length: 0',
      ];
      await server.client.send({
        pieces: [Buffer.from(`${head.join('\r\n')}\r\n\r\nGARBAGE\r\n\r\n`)],
        method: 'PUT',
        mode: 'close',
      });
      await waitFor(() => handled() >= before + 3 + i, 'the chunk before the garbage to be handled');
    }
    await expectHealthy();
  });

  it('legacy chunk forms cut off by the client release their part files at once (no descriptor leak)', async () => {
    const init = await json('POST', '/upload/init', { filename: 'regress/cut-form.bin', filesize: 100_000, chunks: 1 });
    const uploadId = String(init.json!.upload_id);
    const pid = server.process.child.pid!;
    const before = fdCount(pid);
    for (let i = 0; i < 20; i += 1) {
      const body = multipartBody('cutb', [
        { name: 'upload_id', value: uploadId },
        { name: 'chunk_index', value: '0' },
        { name: 'chunk_total', value: '1' },
        { name: 'chunk', value: Buffer.alloc(100_000, 3), filename: 'c', contentType: 'application/octet-stream' },
      ]);
      await send({
        method: 'POST',
        target: '/upload/chunk',
        headers: [['Content-Type', 'multipart/form-data; boundary=cutb']],
        body,
        framing: { kind: 'cut', keep: 0.5, abrupt: i % 2 === 0 },
      });
      // The whole form, then garbage: Node drops the connection for the garbage while the form,
      // all of it received, is still being read.
      const head =
        `POST /upload/chunk HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: multipart/form-data; boundary=cutb\r\nContent-Length: ${body.length}\r\n\r\n`;
      await server.client.send({
        pieces: [Buffer.concat([Buffer.from(head), body, Buffer.from('GARBAGE\r\n\r\n')])],
        method: 'POST',
        mode: 'close',
      });
    }
    await waitFor(
      () => fdCount(pid) <= before,
      `the server's open files to return to ${before} (now ${fdCount(pid)})`,
      10_000,
    );
    await expectHealthy();
    // A form that arrived whole may have been taken before the connection went; a cut one never is.
    const status = await send({
      method: 'GET',
      target: `/upload/status/${uploadId}`,
      headers: [],
      body: Buffer.alloc(0),
    });
    expect(jsonOf(status.responses[0]!)?.received_chunks).toBeLessThanOrEqual(1);
  });

  it('a gzip body whose client left before the server read it releases everything (no leaked file)', async () => {
    const { gzipSync } = await import('node:zlib');
    const { createHash } = await import('node:crypto');
    const content = Buffer.alloc(50_000, 5);
    const gz = gzipSync(content);
    const sha = createHash('sha256').update(content).digest('hex');
    const pid = server.process.child.pid!;
    const before = fdCount(pid);
    for (let i = 0; i < 20; i += 1) {
      const gzip = i % 2 === 0;
      const body = gzip ? gz : content;
      const head =
        `PUT /v1/files/regress-gone/f${i}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Content-Type: application/octet-stream\r\n${gzip ? 'Content-Encoding: gzip\r\n' : ''}` +
        `X-Content-SHA256: ${sha}\r\nContent-Length: ${body.length}\r\n\r\n`;
      // The whole request, then the client vanishes at once: the server is still looking at what is
      // stored at the path when the connection closes.
      await server.client.send({
        pieces: [Buffer.concat([Buffer.from(head), body])],
        method: 'PUT',
        mode: 'close',
        destroy: true,
      });
    }
    await waitFor(
      () => fdCount(pid) <= before,
      `the server's open files to return to ${before} (now ${fdCount(pid)})`,
      10_000,
    );
    await expectHealthy();
  });

  it('uploads whose paths cross at once (file x/d while x/d/d/f needs folder x/d) get 409, never 500', async () => {
    const { createHash } = await import('node:crypto');
    const statuses = new Map<number, number>();
    for (let round = 0; round < 20; round += 1) {
      const puts: Promise<RawExchange>[] = [];
      for (let depth = 1; depth <= 5; depth += 1) {
        for (const target of [
          `regress-cross/r${round}/${'d/'.repeat(depth - 1)}d`,
          `regress-cross/r${round}/${'d/'.repeat(depth)}f`,
        ]) {
          const content = Buffer.from(`${target} ${depth}`);
          const headers: [string, string][] = [
            ['Content-Type', 'application/octet-stream'],
            ['X-Content-SHA256', createHash('sha256').update(content).digest('hex')],
            ...(round % 2 === 0 ? ([['X-Upload-Replace', 'true']] as [string, string][]) : []),
          ];
          puts.push(send({ method: 'PUT', target: `/v1/files/${target}`, headers, body: content }));
        }
      }
      for (const exchange of await Promise.all(puts)) {
        const status = exchange.responses[0]?.status ?? 0;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 409) expect(jsonOf(exchange.responses[0]!)).toMatchObject({ code: 'FILE_EXISTS' });
      }
    }
    expect([...statuses.keys()].sort(), JSON.stringify([...statuses])).toEqual(expect.arrayContaining([201, 409]));
    expect(
      [...statuses.keys()].every((status) => status === 201 || status === 409),
      JSON.stringify([...statuses]),
    ).toBe(true);
    await expectHealthy();
  });

  it('deeply nested JSON is a 400 naming the limit on both APIs, not a 500 (stack overflow)', async () => {
    const deepObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const fingerprint = `fp1:${'2'.repeat(64)}`;
    const bodies: [string, string][] = [
      [
        '/v1/sessions',
        `{"path":"regress/deep.bin","size":1,"fingerprint":"${fingerprint}","metadata":${deepObject(5000)}}`,
      ],
      [
        '/upload/init',
        `{"filename":"regress/deep.bin","filesize":1,"chunks":1,` +
          `"metadata":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
      ],
      ['/v1/sessions/00000000-0000-4000-8000-000000000000/complete', `{"sha256":${deepObject(100)}}`],
      ['/upload/finalize', `${'['.repeat(30_000)}${']'.repeat(30_000)}`],
    ];
    for (const [target, text] of bodies) {
      const exchange = await send({
        method: 'POST',
        target,
        headers: [['Content-Type', 'application/json']],
        body: Buffer.from(text),
      });
      expect(exchange.responses[0]?.status, target).toBe(400);
      expect(jsonOf(exchange.responses[0]!), target).toMatchObject({
        success: false,
        code: 'BAD_REQUEST',
        error: 'The JSON body is nested deeper than 64 levels',
      });
    }
    const modest = await json('POST', '/v1/sessions', {
      path: 'regress/modest.bin',
      size: 1,
      fingerprint,
      metadata: JSON.parse(deepObject(40)) as unknown,
    });
    expect(modest.status).toBe(201);
    await expectHealthy();
  });

  it('a connection that asked to upgrade is closed after its answer: a malformed request cannot hang', async () => {
    const exchange = await server.client.send({
      pieces: [
        Buffer.from('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'),
        Buffer.from('FOO / HTTP/1.1\r\n Bad: 1\r\n\r\n'),
      ],
      method: 'GET',
      mode: 'close',
      pieceDelayMs: 50,
    });
    expect(exchange.responses.map((r) => r.status)[0]).toBe(200);
    expect(exchange.responses[0]!.headers.connection).toBe('close');
    expect(exchange.hung).toBe(false);
    expect(exchange.closed).toBe(true);
    await expectHealthy();
  });

  it('another file under a legacy filename at the 255-byte limit gets a unique name that fits, not a 500', async () => {
    for (const name of [`${'L'.repeat(251)}.bag`, `${'\u00e9'.repeat(125)}.bin`, `${'\ud83d\ude00'.repeat(63)}xyz`]) {
      expect(Buffer.byteLength(name)).toBeGreaterThan(250);
      const stored: string[] = [];
      for (const [i, content] of [Buffer.alloc(100, 1), Buffer.alloc(101, 2), Buffer.alloc(102, 3)].entries()) {
        const file = path.join(temp.path, `long-${i}.bin`);
        await writeFile(file, content);
        const upload = await legacyUploadFile(server.url, file, `regress-long/${name}`, { chunks: 1 });
        expect(upload.finalize.status, JSON.stringify(upload.finalize.json)).toBe(200);
        const filePath = String(upload.finalize.json.file_path);
        expect(Buffer.byteLength(path.basename(filePath))).toBeLessThanOrEqual(255);
        expect(await readFile(path.join(server.root, filePath))).toEqual(content);
        stored.push(filePath);
      }
      expect(new Set(stored).size).toBe(3);
    }
    await expectHealthy();
  });

  it('compression at rest of a file whose name leaves no room for ".gz" is skipped, not a failure', async () => {
    const file = path.join(temp.path, 'gz-long.bin');
    await writeFile(file, Buffer.alloc(20_000, 7));
    const name = `regress-gz/${'G'.repeat(251)}.bin`;
    const native = await uploadFile(server.url, file, name, { create: { compress: true } });
    expect(native.complete.status, JSON.stringify(native.complete.json)).toBe(200);
    const legacy = await legacyUploadFile(server.url, file, `regress-gz-legacy/${'S'.repeat(251)}.bin`, {
      chunks: 2,
      compression: true,
    });
    expect(legacy.finalize.status, JSON.stringify(legacy.finalize.json)).toBe(200);
    expect(legacy.finalize.json).toMatchObject({ compression_applied: false, compressed_path: null });
    // A short name next to it still gets its copy.
    const short = await legacyUploadFile(server.url, file, 'regress-gz-legacy/short.bin', {
      chunks: 1,
      compression: true,
    });
    expect(short.finalize.json).toMatchObject({
      compression_applied: true,
      compressed_path: 'compressed/anonymous/regress-gz-legacy/short.bin.gz',
    });
    await expectHealthy();
  });

  it('a path with an unpaired surrogate is refused on both APIs (it would alias another file)', async () => {
    const fingerprint = `fp1:${'3'.repeat(64)}`;
    for (const bad of ['regress/a\ud800.bin', 'regress/\udc00', 'regress/x\udc00\ud800y']) {
      const native = await json('POST', '/v1/sessions', { path: bad, size: 1, fingerprint });
      expect(native.status, JSON.stringify(bad)).toBe(400);
      expect(native.json).toMatchObject({
        code: 'INVALID_PATH',
        error: 'path is not valid Unicode (it contains an unpaired surrogate)',
      });
      const legacy = await json('POST', '/upload/init', { filename: bad, filesize: 1, chunks: 1 });
      expect(legacy.json).toMatchObject({
        code: 'INVALID_PATH',
        error: 'filename is not valid Unicode (it contains an unpaired surrogate)',
      });
    }
    // A surrogate pair (an emoji) is a character like any other, and the file is found again by the path answered.
    const file = path.join(temp.path, 'emoji.bin');
    await writeFile(file, Buffer.from('emoji content'));
    const upload = await uploadFile(server.url, file, 'regress/\ud83d\ude00.bin');
    expect(upload.complete.json).toMatchObject({ state: 'complete', path: 'regress/\ud83d\ude00.bin' });
    const lookup = await send({
      method: 'GET',
      target: `/v1/files/regress/${encodeURIComponent('\ud83d\ude00.bin')}`,
      headers: [],
      body: Buffer.alloc(0),
    });
    expect(lookup.responses[0]?.status).toBe(200);
    await expectHealthy();
  });
});
