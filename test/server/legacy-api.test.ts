import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyChunk, legacyGet, legacyPost, legacyUploadFile } from '../helpers/legacy-client.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const MiB = 1024 * 1024;
let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  server = await startTestServer();
  files = await createTempDir('legacy-files');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

describe('legacy API', () => {
  it('stores a multi-chunk upload byte-identical and answers as the Python dashboard did', async () => {
    const file = path.join(files.path, 'test.bag');
    const sha = await writeRandomFile(file, 3 * MiB + 17);
    const upload = await legacyUploadFile(server.url, file, 'test.bag', { chunks: 7 });
    expect(upload.init.status).toBe(200);
    expect(upload.init.json).toMatchObject({ success: true, compression_enabled: false });
    expect(upload.chunks.map((c) => c.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
    expect(upload.chunks[6]!.json).toMatchObject({ success: true, received_chunks: 7, total_chunks: 7, progress: 100 });
    expect(upload.finalize.status).toBe(200);
    expect(upload.finalize.json).toMatchObject({
      success: true,
      file_path: 'completed/anonymous/test.bag',
      compressed_path: null,
      checksum: upload.md5,
      compression_applied: false,
      sha256: sha,
    });
    expect(await sha256OfFile(server.completedPath('anonymous', 'test.bag'))).toBe(sha);
    expect(await readdir(path.join(server.uploadDir, 'temp'))).toEqual([]);
    const status = await legacyGet(server.url, `/upload/status/${upload.init.json.upload_id as string}`);
    expect(status.json).toMatchObject({
      success: true,
      filename: 'test.bag',
      received_chunks: 7,
      total_chunks: 7,
      progress: 100,
      state: 'complete',
    });
    const again = await legacyPost(server.url, '/upload/finalize', { upload_id: upload.init.json.upload_id });
    expect(again.json).toEqual(upload.finalize.json);
  });

  it('assembles chunks sent in reverse order, and a re-sent chunk replaces the held one', async () => {
    const file = path.join(files.path, 'reverse.bag');
    const sha = await writeRandomFile(file, 2 * MiB);
    const data = await readFile(file);
    const init = await legacyPost(server.url, '/upload/init', {
      filename: 'reverse.bag',
      filesize: data.length,
      chunks: 4,
    });
    const id = init.json.upload_id as string;
    const part = (i: number): Buffer => data.subarray(i * 512 * 1024, (i + 1) * 512 * 1024);
    // A wrong chunk 0 first, appended as soon as it arrives; then the right one replaces it.
    expect((await legacyChunk(server.url, id, 0, 4, Buffer.alloc(512 * 1024, 7))).status).toBe(200);
    await waitFor(
      async () => (await stat(path.join(server.uploadDir, 'temp', id, 'data'))).size === 512 * 1024,
      'chunk 0 appended',
    );
    for (const i of [3, 2, 1]) expect((await legacyChunk(server.url, id, i, 4, part(i))).status).toBe(200);
    const replaced = await legacyChunk(server.url, id, 0, 4, part(0));
    expect(replaced.json).toMatchObject({ received_chunks: 4, duplicate: false });
    const same = await legacyChunk(server.url, id, 2, 4, part(2));
    expect(same.json).toMatchObject({ received_chunks: 4, duplicate: true });
    const status = await legacyGet(server.url, `/upload/status/${id}`);
    expect(status.json.received_indexes).toEqual([0, 1, 2, 3]);
    const done = await legacyPost(server.url, '/upload/finalize', {
      upload_id: id,
      checksum: createHash('md5').update(data).digest('hex'),
    });
    expect(done.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'reverse.bag'))).toBe(sha);
  });

  it('refuses a wrong MD5 with 400 and keeps the session so the client can re-send', async () => {
    const file = path.join(files.path, 'md5.bag');
    await writeRandomFile(file, 100_000);
    const data = await readFile(file);
    const init = await legacyPost(server.url, '/upload/init', {
      filename: 'md5.bag',
      filesize: data.length,
      chunks: 2,
    });
    const id = init.json.upload_id as string;
    const bad = Buffer.from(data.subarray(0, 50_000));
    bad[10] = bad[10]! ^ 1;
    await legacyChunk(server.url, id, 0, 2, bad);
    await legacyChunk(server.url, id, 1, 2, data.subarray(50_000));
    const md5 = createHash('md5').update(data).digest('hex');
    const refused = await legacyPost(server.url, '/upload/finalize', { upload_id: id, checksum: md5 });
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ success: false, code: 'FILE_CHECKSUM_MISMATCH' });
    expect(refused.json.error).toMatch(/MD5 mismatch/);
    await legacyChunk(server.url, id, 0, 2, data.subarray(0, 50_000));
    const done = await legacyPost(server.url, '/upload/finalize', { upload_id: id, checksum: md5 });
    expect(done.status).toBe(200);
    expect(done.json.checksum).toBe(md5);
  });

  it('never overwrites a different file of the same name: the second is stored under a unique name', async () => {
    const a = path.join(files.path, 'same-a.bag');
    const b = path.join(files.path, 'same-b.bag');
    const shaA = await writeRandomFile(a, 10_000);
    const shaB = await writeRandomFile(b, 10_000);
    const first = await legacyUploadFile(server.url, a, 'dup/same.bag', { chunks: 1 });
    const second = await legacyUploadFile(server.url, b, 'dup/same.bag', { chunks: 1 });
    const third = await legacyUploadFile(server.url, a, 'dup/same.bag', { chunks: 1 });
    expect(first.finalize.json.file_path).toBe('completed/anonymous/dup/same.bag');
    expect(second.finalize.json.file_path).toBe('completed/anonymous/dup/same.1.bag');
    expect(third.finalize.json.file_path).toBe('completed/anonymous/dup/same.bag');
    expect(await sha256OfFile(server.completedPath('anonymous', 'dup/same.bag'))).toBe(shaA);
    expect(await sha256OfFile(server.completedPath('anonymous', 'dup/same.1.bag'))).toBe(shaB);
  });

  it('keeps a gzip copy at rest only when asked, above the threshold and smaller', async () => {
    const text = path.join(files.path, 'text.log');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(text, 'ros2 topic echo /chatter\n'.repeat(Math.ceil((11 * MiB) / 25)));
    const compressible = await legacyUploadFile(server.url, text, 'logs/text.log', { chunks: 3, compression: true });
    expect(compressible.init.json.compression_enabled).toBe(true);
    expect(compressible.finalize.json).toMatchObject({
      compression_applied: true,
      compressed_path: 'compressed/anonymous/logs/text.log.gz',
    });
    const random = path.join(files.path, 'random.bin');
    await writeRandomFile(random, 11 * MiB);
    const incompressible = await legacyUploadFile(server.url, random, 'random.bin', { chunks: 3, compression: true });
    expect(incompressible.finalize.json).toMatchObject({ compression_applied: false, compressed_path: null });
    const small = await legacyPost(server.url, '/upload/init', {
      filename: 'small.bag',
      filesize: 1000,
      chunks: 1,
      compression: true,
    });
    expect(small.json.compression_enabled).toBe(false);
    const gz = await readdir(path.join(server.uploadDir, 'compressed', 'anonymous', 'logs'));
    expect(gz).toEqual(['text.log.gz']);
  });
});
