import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, createSession, putChunk, readChunk, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyGet, legacyPost } from '../helpers/legacy-client.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

let files: TempDir;
beforeAll(async () => {
  files = await createTempDir('expiry-files');
});
afterAll(async () => {
  await files?.remove();
});

describe('expiry and temp cleanup', () => {
  it('deletes abandoned sessions and data after sessionExpiry, forgets completed ones (the file stays)', async () => {
    const server = await startTestServer({ sessionExpiry: 1, cleanupInterval: 3600 });
    try {
      const file = path.join(files.path, 'abandoned.bin');
      await writeRandomFile(file, 4096);
      const native = (await createSession(server.url, file, { path: 'abandoned.bin', chunkSize: 1024 })).json
        .id as string;
      await putChunk(server.url, native, 0, await readChunk(file, 0, 1024, 4096));
      const legacy = (
        await legacyPost(server.url, '/upload/init', { filename: 'abandoned.bag', filesize: 10, chunks: 2 })
      ).json.upload_id as string;
      await legacyChunk(server.url, legacy, 1, 2, Buffer.from('12345'));
      const doneFile = path.join(files.path, 'done.bin');
      const sha = await writeRandomFile(doneFile, 2048);
      const done = await uploadFile(server.url, doneFile, 'done.bin');
      const doneId = done.create.json.id as string;
      expect((await readdir(path.join(server.uploadDir, 'temp'))).sort()).toEqual([native, legacy].sort());

      await waitFor(async () => {
        await server.server.sweepExpired();
        return (
          (await readdir(path.join(server.uploadDir, 'temp'))).length === 0 &&
          (await call(server.url, 'GET', routes.session(doneId))).status === 404
        );
      }, 'the expired sessions to be swept');
      expect((await call(server.url, 'GET', routes.session(native))).status).toBe(404);
      expect((await legacyGet(server.url, `/upload/status/${legacy}`)).status).toBe(404);
      expect((await call(server.url, 'GET', routes.session(doneId))).status).toBe(404);
      expect(await sha256OfFile(server.completedPath('anonymous', 'done.bin'))).toBe(sha);
    } finally {
      await server.close();
    }
  });

  it('the periodic sweep runs by itself', async () => {
    const server = await startTestServer({ sessionExpiry: 1, cleanupInterval: 0.2 });
    try {
      const id = (await legacyPost(server.url, '/upload/init', { filename: 'timer.bag', filesize: 10, chunks: 1 })).json
        .upload_id as string;
      // The record goes first (no request finds it any more), then its data.
      await waitFor(
        async () =>
          (await legacyGet(server.url, `/upload/status/${id}`)).status === 404 &&
          (await readdir(path.join(server.uploadDir, 'temp'))).length === 0,
        'the timer to expire the session and delete its data',
      );
    } finally {
      await server.close();
    }
  });

  it('at startup, deletes temp data that belongs to no session and keeps live sessions', async () => {
    const first = await startTestServer();
    const file = path.join(files.path, 'live.bin');
    const sha = await writeRandomFile(file, 4096);
    const id = (await createSession(first.url, file, { path: 'live.bin', chunkSize: 1024 })).json.id as string;
    await putChunk(first.url, id, 0, await readChunk(file, 0, 1024, 4096));
    await first.close({ keepFiles: true });
    const orphan = path.join(first.uploadDir, 'temp', '0b8a3e0e-0000-4000-8000-000000000000');
    await mkdir(orphan, { recursive: true });
    await writeFile(path.join(orphan, 'data'), 'left over');
    await mkdir(path.join(first.uploadDir, 'temp', 'incoming'), { recursive: true });
    await writeFile(path.join(first.uploadDir, 'temp', 'incoming', 'part-x'), 'half a part');
    await writeFile(
      path.join(first.uploadDir, 'temp', 'compress-0b8a3e0e-0000-4000-8000-000000000000.gz'),
      'half a gzip copy',
    );

    // uploadDir given: the helper does not own it, so it is removed here at the end.
    const second = await startTestServer({ uploadDir: first.uploadDir });
    try {
      expect(await readdir(path.join(second.uploadDir, 'temp'))).toEqual([id]);
      const resumed = await createSession(second.url, file, { path: 'live.bin' });
      expect(resumed.json).toMatchObject({ id, resumed: true, received: [0] });
      const done = await uploadFile(second.url, file, 'live.bin');
      expect(done.complete.json).toMatchObject({ sha256: sha });
      expect(await readdir(path.join(second.uploadDir, 'temp'))).toEqual([]);
    } finally {
      await second.close();
      await rm(first.uploadDir, { recursive: true, force: true });
    }
  });
});
