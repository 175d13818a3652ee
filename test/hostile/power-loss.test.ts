import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headers as protocolHeaders, routes } from '../../common/protocol/native-protocol.js';
import { legacyGet, legacyUploadFile } from '../helpers/legacy-client.js';
import { copyImage, makeExt4Image, mount, requireMounts, skipWithoutMounts, unmount } from '../helpers/mounts.js';
import { call, createSession, uploadFile } from '../helpers/native-upload.js';
import { sha256Of } from '../helpers/random-file.js';
import { spawnServer, type ServerProcess } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * Power loss, honestly simulated: the server's storage root (its files and its SQLite database)
 * is on an ext4 file system in an image file, loop-mounted with `commit=600`, so the file system
 * writes to its device only what something fsyncs (its own journal commit would otherwise come
 * every 5 s). Uploads are acknowledged, the server is killed with SIGKILL, and the image is
 * copied at once: the copy holds exactly what had reached the (loop) device, as a disk holds
 * after a power cut; what the file system still kept in memory is lost. The copy is mounted
 * (ext4 replays its journal, as after a reboot) and a server started on it. Every acknowledged
 * file must be listed and served, with its metadata (so its index entry was durable, not
 * rebuilt), and sending it again must be answered "complete", not 409.
 */
const skip = await skipWithoutMounts('power-loss test');
const TOKEN = randomBytes(24).toString('hex');
const auth = { token: TOKEN };

let work: TempDir | undefined;
const mounted: string[] = [];
const servers: ServerProcess[] = [];

afterAll(async () => {
  for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await Promise.all(servers.map((server) => server.exited));
  for (const point of mounted.reverse()) await unmount(point).catch(() => undefined);
  await work?.remove();
});

interface Acknowledged {
  api: 'whole-file' | 'session' | 'legacy';
  path: string;
  data: Buffer;
  metadata: Record<string, unknown>;
}

async function startOn(uploadDir: string): Promise<ServerProcess> {
  const server = await spawnServer(
    ['--host', '127.0.0.1', '--port', '0', '--upload-dir', uploadDir, '--no-rate-limit', '--disk-reserve', '0'],
    { env: { UPLOAD_SERVER_TOKENS: `robot=${TOKEN}` } },
  );
  servers.push(server);
  return server;
}

describe.skipIf(skip)('power loss', () => {
  it('every upload acknowledged before the cut is listed and served after it, with its metadata, ' +
    'and recognised when sent again', async () => {
    await requireMounts();
    work = await createTempDir('power-loss');
    const image = path.join(work.path, 'disk.img');
    const live = path.join(work.path, 'live');
    const after = path.join(work.path, 'after');
    await Promise.all([mkdir(live), mkdir(after), mkdir(path.join(work.path, 'files'))]);
    await makeExt4Image(image, 128);
    await mount(image, live, ['loop', 'commit=600']);
    mounted.push(live);

    const server = await startOn(path.join(live, 'store'));
    const acknowledged: Acknowledged[] = [];
    // Small whole files (PUT /v1/files), the robot's metadata.yaml and short splits.
    for (let i = 0; i < 40; i += 1) {
      const data = randomBytes(1000 + i * 997);
      const metadata = { robot: 'r1', n: i };
      const answer = await call(server.url, 'PUT', routes.file(`bag_${i % 4}/small_${i}.bin`), data, {
        ...auth,
        headers: {
          'content-type': 'application/octet-stream',
          [protocolHeaders.contentSha256]: sha256Of(data),
          [protocolHeaders.uploadMetadata]: Buffer.from(JSON.stringify(metadata)).toString('base64url'),
        },
      });
      expect(answer.status).toBe(201);
      acknowledged.push({ api: 'whole-file', path: `bag_${i % 4}/small_${i}.bin`, data, metadata });
    }
    // Sessions: create, chunks, complete.
    for (let i = 0; i < 6; i += 1) {
      const data = randomBytes(300_000 + i * 12_345);
      const local = path.join(work.path, 'files', `session_${i}.mcap`);
      await writeFile(local, data);
      const metadata = { robot: 'r1', split: i };
      const result = await uploadFile(server.url, local, `run/session_${i}.mcap`, {
        ...auth,
        chunkSize: 64 * 1024,
        create: { metadata },
      });
      expect(result.complete.json).toMatchObject({ state: 'complete', sha256: sha256Of(data) });
      acknowledged.push({ api: 'session', path: `run/session_${i}.mcap`, data, metadata });
    }
    // The legacy API: init, chunks, finalize.
    for (let i = 0; i < 6; i += 1) {
      const data = randomBytes(50_000 + i * 3_333);
      const local = path.join(work.path, 'files', `legacy_${i}.bag`);
      await writeFile(local, data);
      const result = await legacyUploadFile(server.url, local, `legacy/legacy_${i}.bag`, { chunks: 3, ...auth });
      expect(result.finalize.status).toBe(200);
      acknowledged.push({ api: 'legacy', path: `legacy/legacy_${i}.bag`, data, metadata: {} });
    }

    // The cut: the server dies, and the device's content is taken as it is at this moment.
    server.child.kill('SIGKILL');
    await server.exited;
    const copy = path.join(work.path, 'after-the-cut.img');
    await copyImage(image, copy);
    await unmount(live);
    mounted.splice(mounted.indexOf(live), 1);
    await mount(copy, after, ['loop']);
    mounted.push(after);

    const restarted = await startOn(path.join(after, 'store'));
    const listing = await legacyGet(restarted.url, '/uploads', TOKEN);
    const listed = new Map(
      (listing.json.uploads as { filename: string; sha256: string; metadata: unknown }[]).map((u) => [u.filename, u]),
    );
    for (const file of acknowledged) {
      const sha256 = sha256Of(file.data);
      const lookup = await call(restarted.url, 'GET', routes.file(file.path), undefined, auth);
      expect(lookup.status, `${file.api} ${file.path} after the cut`).toBe(200);
      expect(lookup.json).toMatchObject({ state: 'complete', size: file.data.length, sha256 });
      expect(listed.get(file.path), `${file.path} in GET /uploads`).toMatchObject({ sha256 });
      if (file.api !== 'legacy') expect(listed.get(file.path)?.metadata).toEqual(file.metadata);
      const stored = await readFile(path.join(after, 'store', 'completed', 'robot', ...file.path.split('/')));
      expect(sha256Of(stored), `${file.path} on disk`).toBe(sha256);
    }
    // Sent again, each is recognised as stored: "complete", never 409 FILE_EXISTS.
    for (const file of acknowledged.filter((f) => f.api !== 'whole-file')) {
      const local = path.join(work.path, 'files', path.basename(file.path));
      const again = await createSession(restarted.url, local, { path: file.path }, auth);
      expect(again.status, `${file.path} sent again`).toBe(200);
      expect(again.json).toMatchObject({ state: 'complete', sha256: sha256Of(file.data) });
    }
    for (const file of acknowledged.filter((f) => f.api === 'whole-file').slice(-5)) {
      const again = await call(restarted.url, 'PUT', routes.file(file.path), file.data, {
        ...auth,
        headers: { 'content-type': 'application/octet-stream', [protocolHeaders.contentSha256]: sha256Of(file.data) },
      });
      expect(again.status, `${file.path} put again`).toBe(200);
    }
  }, 180_000);
});
