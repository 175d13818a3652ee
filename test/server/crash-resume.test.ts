import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, crcHeader, createSession, putChunk, readChunk } from '../helpers/native-upload.js';
import { sha256Of, sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyGet, legacyPost } from '../helpers/legacy-client.js';
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const MiB = 1024 * 1024;
let dir: TempDir;
let running: ServerProcess | undefined;

const start = async (): Promise<ServerProcess> => {
  running = await spawnServer([
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--upload-dir',
    path.join(dir.path, 'storage'),
    '--no-rate-limit',
  ]);
  return running;
};

beforeAll(async () => {
  dir = await createTempDir('crash');
});
afterAll(async () => {
  await running?.stop('SIGKILL');
  await dir?.remove();
});

describe('kill -9 of the server mid-upload', () => {
  it('keeps acknowledged chunks, drops the one in flight, resumes after a restart, completes identical', async () => {
    const file = path.join(dir.path, 'bag', 'run_0.mcap');
    const size = 6 * MiB + 321;
    const sha = await writeRandomFile(file, size);
    let server = await start();
    const id = (await createSession(server.url, file, { path: 'bag/run_0.mcap', chunkSize: MiB })).json.id as string;
    for (const index of [0, 1, 4])
      expect((await putChunk(server.url, id, index, await readChunk(file, index, MiB, size))).status).toBe(200);

    // Chunk 2 is in flight: half its body sent, then the server dies.
    const chunk2 = await readChunk(file, 2, MiB, size);
    let sentHalf!: () => void;
    const halfSent = new Promise<void>((resolve) => (sentHalf = resolve));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(chunk2.subarray(0, MiB / 2));
        sentHalf();
      },
    });
    const inFlight = fetch(server.url + routes.chunk(id, 2), {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'x-chunk-checksum': crcHeader(chunk2),
        'content-length': String(MiB),
      },
      body,
      duplex: 'half',
    } as RequestInit).catch((error: Error) => error);
    await halfSent;
    // Give the half body time to reach the server; the kill must come while the request is open either way.
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.child.kill('SIGKILL');
    expect(await server.exited).toBe('SIGKILL');
    expect(await inFlight).toBeInstanceOf(Error);

    server = await start();
    const resumed = await createSession(server.url, file, { path: 'bag/run_0.mcap' });
    expect(resumed.status).toBe(200);
    expect(resumed.json).toMatchObject({ state: 'open', id, resumed: true, received: [0, 1, 4], chunkSize: MiB });
    for (const index of [2, 3, 5, 6])
      expect((await putChunk(server.url, id, index, await readChunk(file, index, MiB, size))).json).toMatchObject({
        duplicate: false,
      });
    const done = await call(server.url, 'POST', routes.complete(id), { sha256: sha });
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ state: 'complete', path: 'bag/run_0.mcap', sha256: sha });
    expect(await sha256OfFile(path.join(dir.path, 'storage', 'completed', 'anonymous', 'bag', 'run_0.mcap'))).toBe(sha);
    expect(await readdir(path.join(dir.path, 'storage', 'temp'))).toEqual([]);
    await server.stop();
  });

  it('keeps a legacy session across kill -9 too', async () => {
    const file = path.join(dir.path, 'legacy.bag');
    const sha = await writeRandomFile(file, 4000);
    const bytes = await readFile(file);
    let server = await start();
    const id = (await legacyPost(server.url, '/upload/init', { filename: 'legacy.bag', filesize: 4000, chunks: 4 }))
      .json.upload_id as string;
    for (const index of [0, 2])
      await legacyChunk(server.url, id, index, 4, bytes.subarray(index * 1000, (index + 1) * 1000));
    server.child.kill('SIGKILL');
    await server.exited;
    server = await start();
    expect((await legacyGet(server.url, `/upload/status/${id}`)).json).toMatchObject({
      received_chunks: 2,
      received_indexes: [0, 2],
    });
    for (const index of [1, 3])
      await legacyChunk(server.url, id, index, 4, bytes.subarray(index * 1000, (index + 1) * 1000));
    const done = await legacyPost(server.url, '/upload/finalize', { upload_id: id });
    expect(done.json).toMatchObject({ success: true, sha256: sha, file_path: 'completed/anonymous/legacy.bag' });
    await server.stop();
  });

  it('leaves nothing of a whole-file PUT cut by kill -9: no file, and no temp area after the restart', async () => {
    const file = path.join(dir.path, 'whole.bin');
    await writeRandomFile(file, 2 * MiB);
    const data = await readFile(file);
    let server = await start();
    let sentHalf!: () => void;
    const halfSent = new Promise<void>((resolve) => (sentHalf = resolve));
    const inFlight = fetch(server.url + routes.file('whole/cut.bin'), {
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'x-content-sha256': sha256Of(data),
        'content-length': String(data.length),
      },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(data.subarray(0, MiB));
          sentHalf();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch((error: Error) => error);
    await halfSent;
    const temp = path.join(dir.path, 'storage', 'temp');
    await waitFor(async () => (await readdir(temp)).length > 0, 'the temp area of the whole-file upload');
    server.child.kill('SIGKILL');
    await server.exited;
    expect(await inFlight).toBeInstanceOf(Error);
    server = await start();
    expect(await readdir(temp)).toEqual([]);
    expect((await call(server.url, 'GET', routes.file('whole/cut.bin'))).status).toBe(404);
    await server.stop();
  });
});
