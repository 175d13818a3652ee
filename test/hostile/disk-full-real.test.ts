import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headers as protocolHeaders, routes } from '../../common/protocol/native-protocol.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { legacyChunk, legacyPost } from '../helpers/legacy-client.js';
import { mountTmpfs, requireMounts, skipWithoutMounts, unmount } from '../helpers/mounts.js';
import { type Answer, call, createSession, putChunk } from '../helpers/native-upload.js';
import { sha256Of } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A really full file system, not a simulated error: the storage root is a 24 MiB tmpfs and the
 * session database has a 2 MiB tmpfs of its own (mounted on state/), each filled to the last
 * page with a filler file. Every operation that needs space answers 507 INSUFFICIENT_STORAGE
 * with a message naming what is full, is logged as `storage_full` at warn (never as a server
 * fault), keeps what was acknowledged, and works again once space is freed.
 */
const skip = await skipWithoutMounts('disk-full tests on a real full tmpfs');
const KiB = 1024;
const MiB = 1024 * KiB;

let dir: TempDir | undefined;
const mounts: string[] = [];
let server: TestServer | undefined;
const logs = captureLogger('debug');

afterAll(async () => {
  await server?.close({ keepFiles: true });
  for (const point of mounts.reverse()) await unmount(point).catch(() => undefined);
  await dir?.remove();
});

/** Writes a filler file until the file system has no page left; returns its path. */
async function fill(folder: string): Promise<string> {
  const filler = path.join(folder, `filler-${randomBytes(4).toString('hex')}`);
  const handle = await open(filler, 'w');
  try {
    for (const size of [MiB, 64 * KiB, 4 * KiB, 512, 1]) {
      const block = Buffer.alloc(size, 7);
      for (;;) {
        try {
          await handle.write(block);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    await handle.close();
  }
  return filler;
}

function putWhole(base: string, relativePath: string, data: Buffer): Promise<Answer> {
  return call(base, 'PUT', routes.file(relativePath), data, {
    headers: { 'content-type': 'application/octet-stream', [protocolHeaders.contentSha256]: sha256Of(data) },
  });
}

function expect507(answer: { status: number; json: Record<string, unknown> }, what: string, message: RegExp): void {
  expect(answer.status, `${what}: ${JSON.stringify(answer.json)}`).toBe(507);
  expect(answer.json, what).toMatchObject({ success: false, code: 'INSUFFICIENT_STORAGE' });
  expect(String(answer.json.error), what).toMatch(message);
}

describe.skipIf(skip)('a really full disk or database is 507 on every path, never 500', () => {
  const title =
    'storage root full, then database full: create, resume, chunk, complete, PUT, legacy init/chunk/finalize';
  it(title, async () => {
    await requireMounts();
    dir = await createTempDir('disk-full-real');
    const root = path.join(dir.path, 'store');
    await mkdir(root);
    await mountTmpfs(root, 24 * MiB);
    mounts.push(root);
    await mkdir(path.join(root, 'state'));
    await mountTmpfs(path.join(root, 'state'), 2 * MiB);
    mounts.push(path.join(root, 'state'));
    server = await startTestServer({ uploadDir: root, diskReserve: 0, logger: logs.logger });
    const base = server.url;
    const files = path.join(dir.path, 'files');
    await mkdir(files);

    // Sessions opened while there is room.
    const native = randomBytes(512 * KiB);
    const nativeFile = path.join(files, 'native.bin');
    await writeFile(nativeFile, native);
    const created = await createSession(base, nativeFile, { path: 'full/native.bin', chunkSize: 128 * KiB });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect((await putChunk(base, id, 0, native.subarray(0, 128 * KiB))).status).toBe(200);
    const legacyData = randomBytes(256 * KiB);
    const init = await legacyPost(base, '/upload/init', {
      filename: 'full/legacy.bag',
      filesize: legacyData.length,
      chunks: 2,
    });
    const uploadId = init.json.upload_id as string;
    expect((await legacyChunk(base, uploadId, 0, 2, legacyData.subarray(0, 128 * KiB))).status).toBe(200);

    // 1. The storage root fills up (the database still has room).
    const dataFiller = await fill(root);
    expect507(
      await putChunk(base, id, 1, native.subarray(128 * KiB, 256 * KiB)),
      'chunk',
      /disk space.*session and its other chunks are kept/,
    );
    expect507(await putWhole(base, 'full/whole.bin', randomBytes(200 * KiB)), 'whole file', /disk space/);
    expect507(await legacyChunk(base, uploadId, 1, 2, legacyData.subarray(128 * KiB)), 'legacy chunk', /disk space/);
    const other = path.join(files, 'other.bin');
    await writeFile(other, randomBytes(300 * KiB));
    expect507(await createSession(base, other, { path: 'full/other.bin' }), 'create', /disk space/);
    expect507(
      await legacyPost(base, '/upload/init', { filename: 'full/more.bag', filesize: 300 * KiB, chunks: 1 }),
      'legacy init',
      /disk space/,
    );
    // What was acknowledged is still there.
    expect((await call(base, 'GET', routes.session(id))).json).toMatchObject({ state: 'open', received: [0] });

    // 2. The session database fills up, and the storage has room again (once the server's
    // free-space gauge, measured at most once a second, sees it).
    const stateFiller = await fill(path.join(root, 'state'));
    await rm(dataFiller);
    const database = /session database has no space left/;
    const tempBefore = await readdir(path.join(root, 'temp'));
    const refusedCreate = await waitFor(async () => {
      const answer = await createSession(base, other, { path: 'full/other.bin' });
      return /Not enough disk space/.test(String(answer.json.error)) ? undefined : answer;
    }, 'the free-space gauge to see the room');
    expect507(refusedCreate, 'create (database)', database);
    expect(await readdir(path.join(root, 'temp')), 'no staging left by a refused create').toEqual(tempBefore);
    expect507(
      await createSession(base, nativeFile, { path: 'full/native.bin', chunkSize: 128 * KiB }),
      'resume',
      database,
    );
    for (const index of [1, 2, 3]) {
      expect507(
        await putChunk(base, id, index, native.subarray(index * 128 * KiB, (index + 1) * 128 * KiB)),
        `chunk ${index} (database)`,
        database,
      );
    }
    expect507(await putWhole(base, 'full/whole.bin', randomBytes(100 * KiB)), 'whole file (database)', database);
    expect507(
      await legacyPost(base, '/upload/init', { filename: 'full/more.bag', filesize: 1000, chunks: 1 }),
      'legacy init (database)',
      database,
    );
    expect507(
      await legacyChunk(base, uploadId, 1, 2, legacyData.subarray(128 * KiB)),
      'legacy chunk (database)',
      database,
    );
    // Reading still works on a full database.
    expect((await call(base, 'GET', routes.session(id))).json).toMatchObject({ state: 'open', received: [0] });
    await rm(stateFiller);

    // Space is back: the uploads carry on from what was acknowledged.
    for (const index of [1, 2, 3]) {
      expect(
        (await putChunk(base, id, index, native.subarray(index * 128 * KiB, (index + 1) * 128 * KiB))).status,
      ).toBe(200);
    }
    expect((await legacyChunk(base, uploadId, 1, 2, legacyData.subarray(128 * KiB))).status).toBe(200);

    // 3. The database fills up at the last step: complete and finalize are 507 too.
    const lastFiller = await fill(path.join(root, 'state'));
    expect507(
      await call(base, 'POST', routes.complete(id), { sha256: sha256Of(native) }),
      'complete (database)',
      database,
    );
    expect507(await legacyPost(base, '/upload/finalize', { upload_id: uploadId }), 'finalize (database)', database);
    await rm(lastFiller);
    // Once there is room, sending the files again finds them stored (they were committed; the
    // index entry that could not be written is made from the file).
    expect((await createSession(base, nativeFile, { path: 'full/native.bin' })).json).toMatchObject({
      state: 'complete',
      sha256: sha256Of(native),
    });
    const legacyAgain = path.join(files, 'legacy.bag');
    await writeFile(legacyAgain, legacyData);
    const stored = await call(base, 'GET', routes.file('full/legacy.bag'));
    expect(stored.json).toMatchObject({ state: 'complete', sha256: sha256Of(legacyData) });

    // Logged as a storage condition: warn-level storage_full lines, no server fault.
    const entries = logs.entries();
    expect(entries.filter((entry) => entry.event === 'request_failed')).toEqual([]);
    expect(entries.some((entry) => entry.event === 'storage_full' && entry.level === 40)).toBe(true);
  }, 120_000);
});
