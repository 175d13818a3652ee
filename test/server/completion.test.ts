import { open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, crcHeader, createSession, putChunk, readChunk, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyGet, legacyPost } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const MiB = 1024 * 1024;
let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  server = await startTestServer();
  files = await createTempDir('completion-files');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

async function sendAll(id: string, file: string, size: number, chunkSize: number, indexes: number[]): Promise<void> {
  for (const index of indexes)
    expect((await putChunk(server.url, id, index, await readChunk(file, index, chunkSize, size))).status).toBe(200);
}

describe('completion', () => {
  it('concurrent completes share one result; completing again after success gives the same answer', async () => {
    const file = path.join(files.path, 'concurrent.bin');
    const sha = await writeRandomFile(file, 4 * MiB);
    const id = (await createSession(server.url, file, { path: 'concurrent.bin', chunkSize: MiB })).json.id as string;
    await sendAll(id, file, 4 * MiB, MiB, [3, 2, 1, 0]);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => call(server.url, 'POST', routes.complete(id), { sha256: sha })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    for (const answer of answers) expect(answer.json).toEqual(answers[0]!.json);
    const later = await call(server.url, 'POST', routes.complete(id), { sha256: sha });
    expect(later.json).toEqual(answers[0]!.json);
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({
      id,
      state: 'complete',
      sha256: sha,
    });
    expect((await putChunk(server.url, id, 0, await readChunk(file, 0, MiB, 4 * MiB))).json).toMatchObject({
      duplicate: true,
    });
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: 'f'.repeat(64) })).status).toBe(422);
  });

  it('after a restart the hash is rebuilt from disk: a lost chunk is named (422); re-sent, it completes', async () => {
    const first = await startTestServer();
    const file = path.join(files.path, 'damaged.bin');
    const size = 4 * MiB;
    const sha = await writeRandomFile(file, size);
    const id = (await createSession(first.url, file, { path: 'damaged.bin', chunkSize: MiB })).json.id as string;
    for (const index of [0, 1, 2, 3]) await putChunk(first.url, id, index, await readChunk(file, index, MiB, size));
    await first.close({ keepFiles: true });
    // What a power failure can do to writes that were acknowledged but not yet fsynced: chunk 2 is damaged.
    const handle = await open(path.join(first.uploadDir, 'temp', id, 'data'), 'r+');
    await handle.write(Buffer.from('garbage'), 0, 7, 2 * MiB + 77);
    await handle.close();
    const second = await startTestServer({ uploadDir: first.uploadDir });
    try {
      const refused = await call(second.url, 'POST', routes.complete(id), { sha256: sha });
      expect(refused.status).toBe(422);
      expect(refused.json).toMatchObject({ success: false, code: 'FILE_CHECKSUM_MISMATCH', missing: [2] });
      expect(refused.json.error).toMatch(/chunk 2$/);
      expect((await call(second.url, 'GET', routes.session(id))).json).toMatchObject({
        state: 'open',
        received: [0, 1, 3],
      });
      await putChunk(second.url, id, 2, await readChunk(file, 2, MiB, size));
      const done = await call(second.url, 'POST', routes.complete(id), { sha256: sha });
      expect(done.json).toMatchObject({ state: 'complete', sha256: sha });
      expect(await sha256OfFile(second.completedPath('anonymous', 'damaged.bin'))).toBe(sha);
    } finally {
      await second.close();
      await rm(first.uploadDir, { recursive: true, force: true });
    }
  });

  it('a SHA-256 mismatch with no bad chunk resets the session (all chunks missing); nothing is visible', async () => {
    const file = path.join(files.path, 'claimed.bin');
    const size = 3 * MiB;
    const sha = await writeRandomFile(file, size);
    const id = (await createSession(server.url, file, { path: 'claimed.bin', chunkSize: MiB })).json.id as string;
    await sendAll(id, file, size, MiB, [0, 1, 2]);
    const refused = await call(server.url, 'POST', routes.complete(id), { sha256: 'a'.repeat(64) });
    expect(refused.status).toBe(422);
    expect(refused.json).toMatchObject({ code: 'FILE_CHECKSUM_MISMATCH', missing: [0, 1, 2] });
    expect(refused.json.error).toMatch(/every chunk passed its checksum/);
    expect(await readdir(path.join(server.uploadDir, 'completed', 'anonymous')).catch(() => [])).not.toContain(
      'claimed.bin',
    );
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({ state: 'open', received: [] });
    await sendAll(id, file, size, MiB, [2, 0, 1]);
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: sha })).json).toMatchObject({
      state: 'complete',
      sha256: sha,
    });
  });

  it('names missing chunks compactly when many are missing', async () => {
    const file = path.join(files.path, 'sparse.bin');
    await writeRandomFile(file, 200 * 1024);
    const result = await uploadFile(server.url, file, 'sparse.bin', {
      chunkSize: 1024,
      skip: Array.from({ length: 150 }, (_, i) => (i < 100 ? i : 100 + 2 * (i - 100))),
    });
    expect(result.complete.status).toBe(409);
    const missing = result.complete.json.missing as number[];
    expect(missing).toHaveLength(150);
    expect(result.complete.json.error).toMatch(/150 of 200 chunks missing: chunks 0-100, 102, 104, /);
    expect(result.complete.json.error).toMatch(/… \(150 in all\)$/);
  });

  it('a newer request for a chunk still being received replaces the older one', async () => {
    const file = path.join(files.path, 'twice.bin');
    const size = 2 * MiB;
    const sha = await writeRandomFile(file, size);
    const id = (await createSession(server.url, file, { path: 'twice.bin', chunkSize: MiB })).json.id as string;
    const chunk0 = await readChunk(file, 0, MiB, size);
    let sentHalf!: () => void;
    const halfSent = new Promise<void>((resolve) => (sentHalf = resolve));
    const stalled = fetch(server.url + routes.chunk(id, 0), {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'x-chunk-checksum': crcHeader(chunk0),
        'content-length': String(MiB),
      },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(chunk0.subarray(0, MiB / 2));
          sentHalf();
        },
      }),
      duplex: 'half',
    } as RequestInit).then(
      (response) => response.status,
      (error: Error) => error,
    );
    await halfSent;
    const fresh = await putChunk(server.url, id, 0, chunk0);
    expect(fresh.json).toMatchObject({ index: 0, duplicate: false });
    expect(await stalled).toBeInstanceOf(Error);
    await putChunk(server.url, id, 1, await readChunk(file, 1, MiB, size));
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: sha })).json).toMatchObject({
      state: 'complete',
      sha256: sha,
    });
  });
  it('data removed from temp/ under a running server drops the session (404), never commits a holed file', async () => {
    const file = path.join(files.path, 'cleaned.bin');
    const size = 4 * MiB;
    const sha = await writeRandomFile(file, size);

    // Removed between two chunks: the next chunk is answered 404 and nothing is re-created empty.
    const first = (await createSession(server.url, file, { path: 'cleaned/a.bin', chunkSize: MiB })).json.id as string;
    await sendAll(first, file, size, MiB, [0, 1]);
    await rm(path.join(server.uploadDir, 'temp', first), { recursive: true, force: true });
    const refused = await putChunk(server.url, first, 2, await readChunk(file, 2, MiB, size));
    expect(refused.status).toBe(404);
    expect(refused.json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND' });
    expect(refused.json.error).toMatch(/cleaned\/a\.bin.*gone from the server's temp folder/);
    expect((await call(server.url, 'GET', routes.session(first))).status).toBe(404);
    expect(await readdir(path.join(server.uploadDir, 'temp'))).not.toContain(first);

    // Removed after the last chunk: complete answers 404 instead of committing.
    const second = (await createSession(server.url, file, { path: 'cleaned/b.bin', chunkSize: MiB })).json.id as string;
    await sendAll(second, file, size, MiB, [0, 1, 2, 3]);
    await rm(path.join(server.uploadDir, 'temp', second, 'data'));
    const completed = await call(server.url, 'POST', routes.complete(second), { sha256: sha });
    expect(completed.status).toBe(404);
    expect(completed.json).toMatchObject({ success: false, code: 'SESSION_NOT_FOUND' });
    await expect(open(server.completedPath('anonymous', 'cleaned/b.bin'), 'r')).rejects.toMatchObject({
      code: 'ENOENT',
    });

    // A legacy session likewise: finalize answers 400 (as for an unknown upload_id) and commits nothing.
    const init = await legacyPost(server.url, '/upload/init', {
      filename: 'cleaned/legacy.bin',
      filesize: size,
      chunks: 4,
    });
    const uploadId = init.json.upload_id as string;
    for (const index of [0, 1, 2, 3])
      expect((await legacyChunk(server.url, uploadId, index, 4, await readChunk(file, index, MiB, size))).status).toBe(
        200,
      );
    await rm(path.join(server.uploadDir, 'temp', uploadId, 'data'), { force: true });
    const finalized = await legacyPost(server.url, '/upload/finalize', { upload_id: uploadId });
    expect(finalized.status).toBe(400);
    expect(finalized.json.error).toMatch(/cleaned\/legacy\.bin.*gone from the server's temp folder/);
    expect((await legacyGet(server.url, `/upload/status/${uploadId}`)).status).toBe(404);
    await expect(open(server.completedPath('anonymous', 'cleaned/legacy.bin'), 'r')).rejects.toMatchObject({
      code: 'ENOENT',
    });

    // The client starts over, as the agent does on 404: a new session, and the file arrives whole.
    for (const name of ['cleaned/a.bin', 'cleaned/b.bin']) {
      const again = await uploadFile(server.url, file, name, { chunkSize: MiB });
      expect(again.create.status).toBe(201);
      expect(again.complete.status).toBe(200);
      expect(await sha256OfFile(server.completedPath('anonymous', name))).toBe(sha);
    }
  });
});
