import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { UploadEventMap, UploadEventName } from '../../server/index.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { legacyChunk, legacyPost, legacyUploadFile } from '../helpers/legacy-client.js';
import { call, createSession, putChunk, readChunk, uploadFile } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const KiB = 1024;
const NAMES: UploadEventName[] = [
  'session-created',
  'chunk-stored',
  'file-completed',
  'session-failed',
  'session-cancelled',
  'session-expired',
];

type Seen = { [K in UploadEventName]: { name: K; event: UploadEventMap[K] } }[UploadEventName];

let dir: TempDir | undefined;
let server: TestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
  await dir?.remove();
  dir = undefined;
});

/** Every event of the server, in order. */
function record(test: TestServer): Seen[] {
  const seen: Seen[] = [];
  for (const name of NAMES) {
    test.server.events.on(name, (event: UploadEventMap[typeof name]) => {
      seen.push({ name, event } as Seen);
    });
  }
  return seen;
}

const of = <K extends UploadEventName>(seen: Seen[], name: K): UploadEventMap[K][] =>
  seen.filter((s) => s.name === name).map((s) => s.event as UploadEventMap[K]);

describe('upload events', () => {
  it('reports a native upload: created, each chunk, completed with uploader, path, size, sha256, API', async () => {
    dir = await createTempDir('events-native');
    server = await startTestServer();
    const seen = record(server);
    const file = path.join(dir.path, 'run_0.mcap');
    const size = 40 * KiB + 5;
    const sha256 = await writeRandomFile(file, size);
    const sent = await uploadFile(server.url, file, 'run/run_0.mcap', {
      chunkSize: 16 * KiB,
      order: (indexes) => indexes.reverse(),
    });
    expect(sent.complete.status).toBe(200);
    const sessionId = sent.create.json.id as string;

    expect(seen.map((s) => s.name)).toEqual([
      'session-created',
      'chunk-stored',
      'chunk-stored',
      'chunk-stored',
      'file-completed',
    ]);
    expect(of(seen, 'session-created')).toEqual([
      { sessionId, api: 'native', uploader: 'anonymous', path: 'run/run_0.mcap', size, chunkCount: 3 },
    ]);
    expect(of(seen, 'chunk-stored').map((e) => [e.index, e.bytes, e.receivedChunks, e.receivedBytes])).toEqual([
      [2, size - 32 * KiB, 1, size - 32 * KiB],
      [1, 16 * KiB, 2, size - 16 * KiB],
      [0, 16 * KiB, 3, size],
    ]);
    const [completed] = of(seen, 'file-completed');
    expect(completed).toMatchObject({
      sessionId,
      api: 'native',
      uploader: 'anonymous',
      path: 'run/run_0.mcap',
      size,
      sha256,
      deduplicated: false,
    });
    expect(Date.parse(completed!.completedAt)).toBeGreaterThan(Date.now() - 60_000);
    // Reported once committed: the file is there when the event says so.
    expect(
      createHash('sha256')
        .update(await readFile(server.completedPath('anonymous', 'run/run_0.mcap')))
        .digest('hex'),
    ).toBe(sha256);
  });

  it('reports legacy and whole-file uploads the same way, and a file already stored as deduplicated', async () => {
    dir = await createTempDir('events-legacy');
    server = await startTestServer();
    const seen = record(server);
    const file = path.join(dir.path, 'notes.bin');
    const sha256 = await writeRandomFile(file, 10 * KiB);
    expect((await legacyUploadFile(server.url, file, 'logs/notes.bin', { chunks: 2 })).finalize.status).toBe(200);
    const data = await readFile(file);
    const put = await call(server.url, 'PUT', '/v1/files/logs/whole.bin', data, {
      headers: { 'content-type': 'application/octet-stream', 'x-content-sha256': sha256 },
    });
    expect(put.status).toBe(201);
    const again = await call(server.url, 'PUT', '/v1/files/logs/whole.bin', data, {
      headers: { 'content-type': 'application/octet-stream', 'x-content-sha256': sha256 },
    });
    expect(again.status).toBe(200);

    expect(of(seen, 'session-created')).toMatchObject([
      { api: 'legacy', path: 'logs/notes.bin', size: 10 * KiB, chunkCount: 2 },
    ]);
    expect(of(seen, 'chunk-stored').map((e) => [e.api, e.index])).toEqual([
      ['legacy', 0],
      ['legacy', 1],
    ]);
    expect(of(seen, 'file-completed')).toMatchObject([
      { api: 'legacy', path: 'logs/notes.bin', size: 10 * KiB, sha256, deduplicated: false },
      { api: 'native', sessionId: null, path: 'logs/whole.bin', size: 10 * KiB, sha256, deduplicated: false },
      { api: 'native', sessionId: null, path: 'logs/whole.bin', size: 10 * KiB, sha256, deduplicated: true },
    ]);
  });

  it('reports failed completions, cancelled and expired sessions', async () => {
    dir = await createTempDir('events-ends');
    server = await startTestServer({ sessionExpiry: 1 });
    const seen = record(server);
    const file = path.join(dir.path, 'f.bin');
    await writeRandomFile(file, 3 * KiB);

    // A native complete with the wrong SHA-256: failed, the session stays.
    const created = await createSession(server.url, file, { path: 'a/wrong.bin', chunkSize: 2 * KiB });
    const id = created.json.id as string;
    for (const index of [0, 1]) await putChunk(server.url, id, index, await readChunk(file, index, 2 * KiB, 3 * KiB));
    expect((await call(server.url, 'POST', `/v1/sessions/${id}/complete`, { sha256: '0'.repeat(64) })).status).toBe(
      422,
    );
    // A legacy finalize with the wrong MD5: failed too.
    const init = await legacyPost(server.url, '/upload/init', { filename: 'a/legacy.bin', filesize: 4, chunks: 1 });
    const uploadId = init.json.upload_id as string;
    await legacyChunk(server.url, uploadId, 0, 1, Buffer.from('abcd'));
    expect(
      (await legacyPost(server.url, '/upload/finalize', { upload_id: uploadId, checksum: '0'.repeat(32) })).status,
    ).toBe(400);
    // Cancelled by its client.
    const other = await createSession(server.url, file, { path: 'a/cancelled.bin' });
    expect((await call(server.url, 'DELETE', `/v1/sessions/${other.json.id as string}`)).status).toBe(204);
    // Superseded: the same path created again for changed content.
    const first = await createSession(server.url, file, { path: 'a/changed.bin' });
    const changed = path.join(dir.path, 'changed.bin');
    await writeRandomFile(changed, 3 * KiB);
    expect((await createSession(server.url, changed, { path: 'a/changed.bin' })).status).toBe(201);

    expect(of(seen, 'session-failed')).toMatchObject([
      { sessionId: id, api: 'native', path: 'a/wrong.bin', code: 'FILE_CHECKSUM_MISMATCH', ended: false },
      { sessionId: uploadId, api: 'legacy', path: 'a/legacy.bin', code: 'FILE_CHECKSUM_MISMATCH', ended: false },
    ]);
    expect(of(seen, 'session-cancelled')).toMatchObject([
      { sessionId: other.json.id, path: 'a/cancelled.bin', reason: 'client' },
      { sessionId: first.json.id, path: 'a/changed.bin', reason: 'superseded' },
    ]);

    // Every open session expires after a second without activity.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await server.server.sweepExpired();
    expect(
      of(seen, 'session-expired')
        .map((e) => e.path)
        .sort(),
    ).toEqual(['a/changed.bin', 'a/legacy.bin', 'a/wrong.bin']);
  });

  it("keeps uploading when a listener throws, and logs the listener's failure", async () => {
    dir = await createTempDir('events-throw');
    const logs = captureLogger();
    server = await startTestServer({ logger: logs.logger });
    server.server.events.on('chunk-stored', () => {
      throw new Error('a broken dashboard');
    });
    const later: string[] = [];
    server.server.events.on('file-completed', (event) => later.push(event.path));
    const file = path.join(dir.path, 'g.bin');
    await writeRandomFile(file, 5 * KiB);
    const sent = await uploadFile(server.url, file, 'g.bin', { chunkSize: 2 * KiB });
    expect(sent.chunkAnswers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(sent.complete.status).toBe(200);
    expect(later).toEqual(['g.bin']);
    expect(logs.entries().filter((entry) => entry.event === 'event_listener_failed')).toMatchObject([
      { level: 50, name: 'chunk-stored', err: { message: 'a broken dashboard' } },
      { name: 'chunk-stored' },
      { name: 'chunk-stored' },
    ]);
  });
});
