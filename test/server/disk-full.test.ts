import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { LocalDiskStorage } from '../../server/index.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { call, createSession, putChunk, readChunk } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyPost } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const MiB = 1024 * 1024;
let storageDir: TempDir;
let files: TempDir;
let storage: FaultyStorage;
let server: TestServer;

beforeAll(async () => {
  storageDir = await createTempDir('disk-full');
  files = await createTempDir('disk-full-files');
  storage = new FaultyStorage(await LocalDiskStorage.open(storageDir.path));
  server = await startTestServer({ uploadDir: storageDir.path, storage });
});
afterAll(async () => {
  await server?.close();
  await storageDir?.remove();
  await files?.remove();
});

describe('disk space', () => {
  it('a simulated ENOSPC while writing a chunk gives 507, keeps the session; the chunk can be re-sent', async () => {
    const file = path.join(files.path, 'enospc.bin');
    const sha = await writeRandomFile(file, 3 * MiB);
    const id = (await createSession(server.url, file, { path: 'enospc.bin', chunkSize: MiB })).json.id as string;
    expect((await putChunk(server.url, id, 0, await readChunk(file, 0, MiB, 3 * MiB))).status).toBe(200);
    storage.failWrites = 'ENOSPC'; // simulated: the storage decorator fails the write, the disk is not really full
    const full = await putChunk(server.url, id, 1, await readChunk(file, 1, MiB, 3 * MiB));
    expect(full.status).toBe(507);
    expect(full.json).toMatchObject({
      success: false,
      code: 'INSUFFICIENT_STORAGE',
      error: expect.stringMatching(/the session and its other chunks are kept/),
    });
    const status = await call(server.url, 'GET', routes.session(id));
    expect(status.json).toMatchObject({ state: 'open', received: [0] });
    expect(await readdir(path.join(server.uploadDir, 'completed'))).toEqual([]);
    storage.failWrites = undefined;
    for (const index of [1, 2])
      expect((await putChunk(server.url, id, index, await readChunk(file, index, MiB, 3 * MiB))).status).toBe(200);
    const done = await call(server.url, 'POST', routes.complete(id), { sha256: sha });
    expect(done.json).toMatchObject({ state: 'complete', sha256: sha });
    expect(await sha256OfFile(server.completedPath('anonymous', 'enospc.bin'))).toBe(sha);
  });

  it('a simulated ENOSPC on a legacy chunk is 507 too, and the upload continues afterwards', async () => {
    const init = await legacyPost(server.url, '/upload/init', {
      filename: 'legacy-full.bag',
      filesize: 4000,
      chunks: 2,
    });
    const id = init.json.upload_id as string;
    storage.failWrites = 'ENOSPC';
    const full = await legacyChunk(server.url, id, 0, 2, Buffer.alloc(2000, 1));
    expect(full.status).toBe(507);
    storage.failWrites = undefined;
    expect((await legacyChunk(server.url, id, 0, 2, Buffer.alloc(2000, 1))).json).toMatchObject({ received_chunks: 1 });
    expect((await legacyChunk(server.url, id, 1, 2, Buffer.alloc(2000, 2))).json).toMatchObject({ received_chunks: 2 });
    expect((await legacyPost(server.url, '/upload/finalize', { upload_id: id })).status).toBe(200);
  });

  it('refuses a new upload with 507 when free space is below its size plus the reserve', async () => {
    const free = await storage.freeSpace();
    const tight = await startTestServer({ diskReserve: free + 1024 * MiB });
    try {
      const legacy = await legacyPost(tight.url, '/upload/init', { filename: 'x.bag', filesize: 1000, chunks: 1 });
      expect(legacy.status).toBe(507);
      expect(legacy.json).toMatchObject({
        success: false,
        code: 'INSUFFICIENT_STORAGE',
        error: expect.stringMatching(/Not enough disk space/),
      });
      const native = await call(tight.url, 'POST', routes.sessions, {
        path: 'x.bin',
        size: 1000,
        fingerprint: `fp1:${'0'.repeat(64)}`,
      });
      expect(native.status).toBe(507);
    } finally {
      await tight.close();
    }
  });
});
