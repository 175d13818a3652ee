import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, crcHeader, createSession, putChunk, readChunk, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  server = await startTestServer();
  files = await createTempDir('native-files');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

describe('native protocol', () => {
  it('uploads a file sent in order and stores it byte-identical, leaving nothing in temp', async () => {
    const file = path.join(files.path, 'in-order.bin');
    const sha = await writeRandomFile(file, 3 * MiB + 123);
    const result = await uploadFile(server.url, file, 'run1/in-order.bin', { chunkSize: 1 * MiB });
    expect(result.create.status).toBe(201);
    expect(result.chunkAnswers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(result.complete.status).toBe(200);
    expect(result.complete.json).toMatchObject({
      state: 'complete',
      path: 'run1/in-order.bin',
      size: 3 * MiB + 123,
      sha256: sha,
    });
    expect(await sha256OfFile(server.completedPath('anonymous', 'run1/in-order.bin'))).toBe(sha);
    expect(await readdir(path.join(server.uploadDir, 'temp'))).toEqual([]);
  });

  it('uploads out-of-order parallel chunks byte-identical', async () => {
    const file = path.join(files.path, 'shuffled.bin');
    const sha = await writeRandomFile(file, 10 * MiB + 7);
    const result = await uploadFile(server.url, file, 'shuffled.bin', {
      chunkSize: 1 * MiB,
      parallel: 4,
      order: (indexes) => [...indexes].sort(() => Math.random() - 0.5).reverse(),
    });
    expect(result.chunkAnswers.every((a) => a.status === 200 && a.json.duplicate === false)).toBe(true);
    expect(result.complete.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'shuffled.bin'))).toBe(sha);
  });

  it('stores chunks sent while the ones before them still arrive (one sent twice) byte-identical', async () => {
    // The server queues such chunks behind the one before them, so each is hashed as it lands;
    // whatever the interleaving, every request gets an answer and the file is complete.
    const file = path.join(files.path, 'queued.bin');
    const size = 4 * MiB;
    const sha = await writeRandomFile(file, size);
    const created = await createSession(server.url, file, { path: 'queued.bin', chunkSize: MiB });
    const id = created.json.id as string;
    const chunks = await Promise.all([0, 1, 2, 3].map((index) => readChunk(file, index, MiB, size)));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // Chunk 0 arrives in two parts: the first now, the second once the other requests are under way.
    const slowBody = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(chunks[0]!.subarray(0, MiB / 2));
        await released;
        controller.enqueue(chunks[0]!.subarray(MiB / 2));
        controller.close();
      },
    });
    const first = fetch(server.url + routes.chunk(id, 0), {
      method: 'PUT',
      body: slowBody,
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream', 'x-chunk-checksum': crcHeader(chunks[0]!) },
    } as RequestInit);
    const others = [1, 2, 3, 2].map((index) =>
      putChunk(server.url, id, index, chunks[index]!).then(
        (answer) => ({ index, status: answer.status, code: answer.json.code }),
        (error: unknown) => ({ index, status: 0, code: String(error) }),
      ),
    );
    release();
    expect((await first).status).toBe(200);
    const answers = await Promise.all(others);
    expect(answers.filter((a) => a.index !== 2).map((a) => a.status)).toEqual([200, 200]);
    // The second request for chunk 2 takes over from the first if that one was still waiting or receiving.
    const twice = answers.filter((a) => a.index === 2);
    expect(twice.some((a) => a.status === 200)).toBe(true);
    for (const answer of twice) expect([200, 409, 0]).toContain(answer.status);
    const complete = await call(server.url, 'POST', routes.complete(id), { sha256: sha });
    expect(complete.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'queued.bin'))).toBe(sha);
  });

  it('resumes: asking again returns the same session with its chunks; the stored file answers complete', async () => {
    const file = path.join(files.path, 'resume.bin');
    const sha = await writeRandomFile(file, 3 * MiB);
    const first = await createSession(server.url, file, { path: 'resume.bin', chunkSize: MiB });
    const id = first.json.id as string;
    expect((await putChunk(server.url, id, 1, await readChunk(file, 1, MiB, 3 * MiB))).status).toBe(200);
    const again = await createSession(server.url, file, { path: 'resume.bin', chunkSize: 4 * MiB });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ state: 'open', id, resumed: true, received: [1], chunkSize: MiB });
    const duplicate = await putChunk(server.url, id, 1, await readChunk(file, 1, MiB, 3 * MiB));
    expect(duplicate.json).toMatchObject({ duplicate: true, receivedCount: 1 });
    const status = await call(server.url, 'GET', routes.session(id));
    expect(status.json).toMatchObject({ state: 'open', received: [1] });
    const done = await uploadFile(server.url, file, 'resume.bin');
    expect(done.complete.json).toMatchObject({ state: 'complete', sha256: sha });
    const repeat = await call(server.url, 'POST', routes.complete(id), { sha256: sha });
    expect(repeat.status).toBe(200);
    expect(repeat.json).toEqual(done.complete.json);
    const already = await createSession(server.url, file, { path: 'resume.bin' });
    expect(already.status).toBe(200);
    expect(already.json).toMatchObject({ state: 'complete', sha256: sha });
    const lookup = await call(server.url, 'GET', routes.file('resume.bin'));
    expect(lookup.json).toMatchObject({ state: 'complete', sha256: sha });
  });

  it('refuses a corrupted chunk with 422 and acknowledges nothing', async () => {
    const file = path.join(files.path, 'corrupt.bin');
    await writeRandomFile(file, 2 * MiB);
    const created = await createSession(server.url, file, { path: 'corrupt.bin', chunkSize: MiB });
    const id = created.json.id as string;
    const data = await readChunk(file, 0, MiB, 2 * MiB);
    const good = (await import('../helpers/native-upload.js')).crcHeader(data);
    const flipped = Buffer.from(data);
    flipped[12345] = flipped[12345]! ^ 0x10;
    const answer = await putChunk(server.url, id, 0, flipped, { checksum: good });
    expect(answer.status).toBe(422);
    expect(answer.json).toMatchObject({ success: false, code: 'CHUNK_CHECKSUM_MISMATCH' });
    const status = await call(server.url, 'GET', routes.session(id));
    expect(status.json.received).toEqual([]);
  });

  it('refuses to complete with chunks missing and names them', async () => {
    const file = path.join(files.path, 'missing.bin');
    const sha = await writeRandomFile(file, 5 * MiB);
    const result = await uploadFile(server.url, file, 'missing.bin', { chunkSize: MiB, skip: [1, 3] });
    expect(result.complete.status).toBe(409);
    expect(result.complete.json).toMatchObject({ success: false, code: 'CHUNKS_MISSING', missing: [1, 3] });
    expect(result.complete.json.error).toMatch(/chunks 1, 3/);
    expect(sha).toHaveLength(64);
  });

  it('cancels a session and deletes its data', async () => {
    const file = path.join(files.path, 'cancel.bin');
    await writeRandomFile(file, 2 * MiB);
    const created = await createSession(server.url, file, { path: 'cancel.bin', chunkSize: MiB });
    const id = created.json.id as string;
    await putChunk(server.url, id, 0, await readChunk(file, 0, MiB, 2 * MiB));
    expect(await readdir(path.join(server.uploadDir, 'temp'))).toContain(id);
    const cancelled = await call(server.url, 'DELETE', routes.session(id));
    expect(cancelled.status).toBe(204);
    expect(await readdir(path.join(server.uploadDir, 'temp'))).not.toContain(id);
    expect((await call(server.url, 'GET', routes.session(id))).status).toBe(404);
    expect((await readFile(file)).length).toBe(2 * MiB);
  });

  it('concurrent creates for the same file get one session; a changed file supersedes the old session', async () => {
    const file = path.join(files.path, 'concurrent-create.bin');
    await writeRandomFile(file, 3 * MiB);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        createSession(server.url, file, { path: 'concurrent-create.bin', chunkSize: MiB }),
      ),
    );
    const ids = new Set(answers.map((a) => a.json.id));
    expect(ids.size).toBe(1);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 201]);
    const [id] = [...ids] as string[];
    await putChunk(server.url, id!, 0, await readChunk(file, 0, MiB, 3 * MiB));
    await writeRandomFile(file, 2 * MiB);
    const changed = await createSession(server.url, file, { path: 'concurrent-create.bin', chunkSize: MiB });
    expect(changed.status).toBe(201);
    expect(changed.json.id).not.toBe(id);
    expect((await call(server.url, 'GET', routes.session(id!))).status).toBe(404);
    expect(await readdir(path.join(server.uploadDir, 'temp'))).not.toContain(id);
  });

  it('keeps a gzip copy at rest when a native client asks with compress', async () => {
    const file = path.join(files.path, 'zeros.bin');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, Buffer.alloc(12 * MiB));
    const result = await uploadFile(server.url, file, 'zeros.bin', { create: { compress: true } });
    expect(result.complete.status).toBe(200);
    const gz = path.join(server.uploadDir, 'compressed', 'anonymous', 'zeros.bin.gz');
    const { waitFor } = await import('../helpers/wait-for.js');
    await waitFor(
      async () => (await call(server.url, 'GET', routes.file('zeros.bin'))).json.compressedSize,
      'the gzip copy',
    );
    const { gunzipSync } = await import('node:zlib');
    expect(gunzipSync(await readFile(gz)).equals(Buffer.alloc(12 * MiB))).toBe(true);
  });

  it('answers a request without a Host header with JSON too', async () => {
    const net = await import('node:net');
    const { port } = new URL(server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () =>
        socket.write('GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.setEncoding('utf8').on('data', (piece: string) => (text += piece));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
    expect(answer).toContain('"code":"ROUTE_NOT_FOUND"');
  });

  it('uploads an empty file (one empty chunk) on both APIs', async () => {
    const file = path.join(files.path, 'empty.bin');
    const { writeFile, stat } = await import('node:fs/promises');
    await writeFile(file, '');
    const native = await uploadFile(server.url, file, 'empty/native.bin');
    expect(native.create.json).toMatchObject({ chunkCount: 1 });
    expect(native.complete.json).toMatchObject({
      state: 'complete',
      size: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    const { legacyUploadFile } = await import('../helpers/legacy-client.js');
    const legacy = await legacyUploadFile(server.url, file, 'empty/legacy.bin', { chunks: 1 });
    expect(legacy.finalize.json).toMatchObject({
      success: true,
      size: 0,
      checksum: 'd41d8cd98f00b204e9800998ecf8427e',
    });
    expect((await stat(server.completedPath('anonymous', 'empty/legacy.bin'))).size).toBe(0);
  });
});
