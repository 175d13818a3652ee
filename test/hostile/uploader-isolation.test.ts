import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintFile } from '../../common/protocol/fingerprint.js';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, createSession, putChunk, readChunk, uploadFile, type Answer } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyChunk, legacyGet, legacyPost, legacyUploadFile } from '../helpers/legacy-client.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { createLayout, startFuzzServer, type FuzzServer } from './support/fuzz-target.js';
import { serverComplaints } from './support/server-watch.js';

/**
 * An authenticated uploader cannot read, resume, complete, cancel or send chunks to another
 * uploader's sessions, cannot read its files, and does not see them in GET /uploads, on the
 * native and the legacy routes. The server (a real process) has tokens for robot1 and robot2 and
 * also accepts anonymous requests, a third identity. robot1 owns everything; robot2 and
 * anonymous try everything, and must get exactly what an unknown id or path gets.
 */

let temp: TempDir;
let server: FuzzServer;
let robot1: { token: string };
let intruders: { name: string; token: string | undefined }[];
const SIZE = 3 * 4096 + 100;
const CHUNK = 4096;

/** robot1's things. */
const owned = {
  file: '',
  fingerprint: '',
  /** An open native session with chunks 0 and 1 received. */
  openId: '',
  /** A native session completed into completed/robot1/iso/done.bin. */
  doneId: '',
  doneSha: '',
  /** An open legacy upload with chunk 0 received. */
  legacyOpenId: '',
  /** A finalized legacy upload. */
  legacyDoneId: '',
};

beforeAll(async () => {
  temp = await createTempDir('hostile-isolation');
  server = await startFuzzServer(await createLayout(temp.path), 'I', { anonymous: true });
  robot1 = { token: server.tokens.robot1 };
  intruders = [
    { name: 'robot2', token: server.tokens.robot2 },
    { name: 'anonymous', token: undefined },
  ];
  owned.file = path.join(temp.path, 'owned.bin');
  await writeRandomFile(owned.file, SIZE);
  owned.fingerprint = await fingerprintFile(owned.file);

  const open = await createSession(server.url, owned.file, { path: 'iso/open.bin', chunkSize: CHUNK }, robot1);
  owned.openId = open.json.id as string;
  for (const index of [0, 1])
    expect(
      (await putChunk(server.url, owned.openId, index, await readChunk(owned.file, index, CHUNK, SIZE), robot1)).status,
    ).toBe(200);

  const done = await uploadFile(server.url, owned.file, 'iso/done.bin', { ...robot1, chunkSize: CHUNK });
  expect(done.complete.status).toBe(200);
  owned.doneId = done.create.json.id as string;
  owned.doneSha = done.complete.json.sha256 as string;

  const init = await legacyPost(
    server.url,
    '/upload/init',
    { filename: 'iso/legacy-open.bin', filesize: SIZE, chunks: 2 },
    robot1.token,
  );
  owned.legacyOpenId = init.json.upload_id as string;
  const data = await readFile(owned.file);
  expect((await legacyChunk(server.url, owned.legacyOpenId, 0, 2, data.subarray(0, 8192), robot1.token)).status).toBe(
    200,
  );

  const legacyDone = await legacyUploadFile(server.url, owned.file, 'iso/legacy-done.bin', {
    chunks: 2,
    token: robot1.token,
  });
  expect(legacyDone.finalize.status).toBe(200);
  owned.legacyDoneId = legacyDone.init.json.upload_id as string;
});

afterAll(async () => {
  server?.client.close();
  await server?.process.stop();
  await temp?.remove();
});

/** The answer with the id taken out of the message: what an unknown id gets must be what a foreign id gets. */
function shape(answer: { status: number; json: Record<string, unknown> }, id: string): unknown {
  return {
    status: answer.status,
    code: answer.json.code,
    success: answer.json.success,
    error: String(answer.json.error).replaceAll(id, '<id>'),
  };
}

const UNKNOWN = '00000000-0000-4000-8000-00000000beef';

/** robot1 still sees its things exactly as they were. */
async function ownerStillHasEverything(): Promise<void> {
  const open = await call(server.url, 'GET', routes.session(owned.openId), undefined, robot1);
  expect(open.json).toMatchObject({ state: 'open', received: [0, 1] });
  const done = await call(server.url, 'GET', routes.file('iso/done.bin'), undefined, robot1);
  expect(done.json).toMatchObject({ state: 'complete', sha256: owned.doneSha });
  expect(await sha256OfFile(path.join(server.root, 'completed', 'robot1', 'iso', 'done.bin'))).toBe(owned.doneSha);
  const legacyOpen = await legacyGet(server.url, `/upload/status/${owned.legacyOpenId}`, robot1.token);
  expect(legacyOpen.json).toMatchObject({ state: 'uploading', received_indexes: [0] });
  const legacyDone = await legacyGet(server.url, `/upload/status/${owned.legacyDoneId}`, robot1.token);
  expect(legacyDone.json).toMatchObject({ state: 'complete' });
}

describe("an uploader cannot reach another uploader's sessions or files", () => {
  it('native sessions: read, chunks, complete and cancel answer as for an unknown id, and change nothing', async () => {
    for (const intruder of intruders) {
      const as = intruder.token ? { token: intruder.token } : {};
      for (const id of [owned.openId, owned.doneId]) {
        const checks: [string, (target: string) => Promise<Answer>][] = [
          ['GET session', (target) => call(server.url, 'GET', routes.session(target), undefined, as)],
          ['PUT chunk', (target) => putChunk(server.url, target, 2, Buffer.alloc(CHUNK, 9), as)],
          ['complete', (target) => call(server.url, 'POST', routes.complete(target), { sha256: owned.doneSha }, as)],
          ['cancel', (target) => call(server.url, 'DELETE', routes.session(target), undefined, as)],
        ];
        for (const [what, attempt] of checks) {
          const foreign = await attempt(id);
          const unknown = await attempt(UNKNOWN);
          expect(foreign.status, `${intruder.name}: ${what} ${id}`).toBe(404);
          expect(shape(foreign, id), `${intruder.name}: ${what}`).toEqual(shape(unknown, UNKNOWN));
          expect(JSON.stringify(foreign.json)).not.toContain('iso/');
        }
      }
    }
    await ownerStillHasEverything();
  });

  it("a session for the same path, size and fingerprint never resumes another uploader's, or its file", async () => {
    for (const intruder of intruders) {
      const as = intruder.token ? { token: intruder.token } : {};
      const resume = await call(
        server.url,
        'POST',
        routes.sessions,
        { path: 'iso/open.bin', size: SIZE, fingerprint: owned.fingerprint, chunkSize: CHUNK },
        as,
      );
      expect(resume.status, intruder.name).toBe(201);
      expect(resume.json).toMatchObject({ state: 'open', resumed: false, received: [] });
      expect(resume.json.id).not.toBe(owned.openId);
      // The same file robot1 completed, with its SHA-256: still a new, empty session, not "complete".
      const stored = await call(
        server.url,
        'POST',
        routes.sessions,
        { path: 'iso/done.bin', size: SIZE, fingerprint: owned.fingerprint, chunkSize: CHUNK, sha256: owned.doneSha },
        as,
      );
      expect(stored.status, intruder.name).toBe(201);
      expect(stored.json).toMatchObject({ state: 'open', resumed: false, received: [] });
      // And its own new session is its own: robot1 cannot see it either.
      expect((await call(server.url, 'GET', routes.session(resume.json.id as string), undefined, robot1)).status).toBe(
        404,
      );
      // Cancel it again so the next intruder starts from the same state.
      expect((await call(server.url, 'DELETE', routes.session(resume.json.id as string), undefined, as)).status).toBe(
        204,
      );
      expect((await call(server.url, 'DELETE', routes.session(stored.json.id as string), undefined, as)).status).toBe(
        204,
      );
    }
    await ownerStillHasEverything();
  });

  it('stored files: GET /v1/files and GET /uploads show nothing of the other uploader', async () => {
    for (const intruder of intruders) {
      const as = intruder.token ? { token: intruder.token } : {};
      for (const file of ['iso/done.bin', 'iso/legacy-done.bin']) {
        const lookup = await call(server.url, 'GET', routes.file(file), undefined, as);
        const unknown = await call(server.url, 'GET', routes.file('iso/never-stored.bin'), undefined, as);
        expect(lookup.status, `${intruder.name} ${file}`).toBe(404);
        expect({ status: lookup.status, code: lookup.json.code }).toEqual({
          status: unknown.status,
          code: unknown.json.code,
        });
      }
    }
    // robot2 lists only its own uploads (one of its own, with the same name as robot1's, to be sure).
    const mine = await legacyUploadFile(server.url, owned.file, 'iso/robot2-own.bin', {
      chunks: 1,
      token: server.tokens.robot2,
    });
    expect(mine.finalize.status).toBe(200);
    const listing = await legacyGet(server.url, '/uploads', server.tokens.robot2);
    expect(listing.status).toBe(200);
    const uploads = listing.json.uploads as { filename: string; file_path: string }[];
    expect(uploads.map((u) => u.filename)).toEqual(['iso/robot2-own.bin']);
    expect(uploads.every((u) => u.file_path.startsWith('completed/robot2/'))).toBe(true);
    expect(JSON.stringify(listing.json)).not.toMatch(/robot1|iso\/done|iso\/legacy-done/);
    // Anonymous requests cannot list at all.
    expect((await legacyGet(server.url, '/uploads')).status).toBe(401);
    // robot1's listing is robot1's.
    const own = await legacyGet(server.url, '/uploads', robot1.token);
    expect((own.json.uploads as { filename: string }[]).map((u) => u.filename).sort()).toEqual([
      'iso/done.bin',
      'iso/legacy-done.bin',
    ]);
  });

  it('legacy uploads: status, chunks and finalize answer as for an unknown upload_id, and change nothing', async () => {
    const data = await readFile(owned.file);
    for (const intruder of intruders) {
      for (const id of [owned.legacyOpenId, owned.legacyDoneId]) {
        const status = await legacyGet(server.url, `/upload/status/${id}`, intruder.token);
        const unknownStatus = await legacyGet(server.url, `/upload/status/${UNKNOWN}`, intruder.token);
        expect(status.status, `${intruder.name} status ${id}`).toBe(404);
        expect(shape(status, id)).toEqual(shape(unknownStatus, UNKNOWN));
        const chunk = await legacyChunk(server.url, id, 1, 2, data.subarray(8192), intruder.token);
        const unknownChunk = await legacyChunk(server.url, UNKNOWN, 1, 2, data.subarray(8192), intruder.token);
        expect(chunk.status, `${intruder.name} chunk ${id}`).toBe(400);
        expect(shape(chunk, id)).toEqual(shape(unknownChunk, UNKNOWN));
        const finalize = await legacyPost(server.url, '/upload/finalize', { upload_id: id }, intruder.token);
        const unknownFinalize = await legacyPost(
          server.url,
          '/upload/finalize',
          { upload_id: UNKNOWN },
          intruder.token,
        );
        expect(finalize.status, `${intruder.name} finalize ${id}`).toBe(400);
        expect(shape(finalize, id)).toEqual(shape(unknownFinalize, UNKNOWN));
      }
      // Cross-API: the native routes on robot1's legacy ids, and the legacy routes on its native ids.
      const as = intruder.token ? { token: intruder.token } : {};
      expect((await call(server.url, 'GET', routes.session(owned.legacyOpenId), undefined, as)).status).toBe(404);
      expect((await legacyGet(server.url, `/upload/status/${owned.openId}`, intruder.token)).status).toBe(404);
      expect(
        (await legacyPost(server.url, '/upload/finalize', { upload_id: owned.openId }, intruder.token)).status,
      ).toBe(400);
    }
    await ownerStillHasEverything();
    // Nothing of the intruders' attempts landed in robot1's folder.
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(path.join(server.root, 'completed', 'robot1', 'iso'))).sort()).toEqual([
      'done.bin',
      'legacy-done.bin',
    ]);
    expect(serverComplaints(server.process)).toEqual([]);
  });

  it("a wrong or missing token never reaches anyone's sessions (401 on every route but /health)", async () => {
    const closed = await startFuzzServer(await createLayout(path.join(temp.path)), 'J', { anonymous: false });
    try {
      const created = await call(
        closed.url,
        'POST',
        routes.sessions,
        { path: 'x.bin', size: 10, fingerprint: owned.fingerprint },
        { token: closed.tokens.robot1 },
      );
      const id = created.json.id as string;
      for (const token of [
        undefined,
        'wrong-token-123456789',
        closed.tokens.robot1.slice(0, -1),
        `${closed.tokens.robot1}x`,
      ]) {
        const as = token ? { token } : {};
        expect((await call(closed.url, 'GET', routes.session(id), undefined, as)).status).toBe(401);
        expect((await call(closed.url, 'DELETE', routes.session(id), undefined, as)).status).toBe(401);
        expect(
          (
            await call(
              closed.url,
              'POST',
              routes.sessions,
              { path: 'x.bin', size: 10, fingerprint: owned.fingerprint },
              as,
            )
          ).status,
        ).toBe(401);
        expect((await legacyGet(closed.url, `/upload/status/${id}`, token)).status).toBe(401);
        expect((await legacyGet(closed.url, '/uploads', token)).status).toBe(401);
      }
      expect(
        (await call(closed.url, 'GET', routes.session(id), undefined, { token: closed.tokens.robot1 })).json,
      ).toMatchObject({ state: 'open' });
    } finally {
      closed.client.close();
      await closed.process.stop();
    }
  });
});
