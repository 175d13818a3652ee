import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { RUNTIME_IDLE_MS, RuntimeRegistry } from '../../server/runtime/runtime-registry.js';
import type { SessionRecord } from '../../server/sessions/session-record.js';
import { SqliteSessionStore } from '../../server/sessions/sqlite-session-store.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { call, createSession } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * Abandoned sessions hold no memory: a session's working state (SessionRuntime) is in memory
 * only while it is used, and each uploader's unfinished sessions are capped (maxOpenSessions).
 * The memory figure itself is the `abandoned-sessions` benchmark (bench/RESULTS.md).
 */
const dirs: TempDir[] = [];
const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
  for (const dir of dirs) await dir.remove();
});

function record(uploader: string, index: number, now: number): SessionRecord {
  return {
    id: randomUUID(),
    api: 'native',
    uploader,
    path: `abandoned/${index}.bin`,
    size: 1000,
    fingerprint: `fp-${index}`,
    chunkSize: 1000,
    chunkCount: 1,
    sha256Hint: null,
    md5Expected: null,
    metadata: null,
    replace: false,
    compress: false,
    state: 'open',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 86_400_000,
    result: null,
  };
}

describe('session working state in memory', () => {
  it('is dropped once idle and not busy, and loaded again from the store when used', async () => {
    const dir = await createTempDir('session-memory');
    dirs.push(dir);
    const store = new SqliteSessionStore(path.join(dir.path, 'uploads.db'));
    try {
      const now = Date.now();
      const records = Array.from({ length: 200 }, (_, index) => record('robot', index, now));
      for (const r of records) await store.insertSession(r);
      const registry = new RuntimeRegistry(store);
      for (const r of records) expect((await registry.find(r.id))?.id).toBe(r.id);
      expect(registry.all()).toHaveLength(200);

      // One session is receiving a chunk, another holds its lock: those stay, whatever their age.
      const receiving = (await registry.find(records[0]!.id))!;
      let finish!: () => void;
      receiving.inFlight.set(0, { abort: () => undefined, done: new Promise<void>((resolve) => (finish = resolve)) });
      const locked = (await registry.find(records[1]!.id))!;
      let unlock!: () => void;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const held = locked.lock.run(
        () =>
          new Promise<void>((resolve) => {
            unlock = resolve;
            started();
          }),
      );
      await running;

      expect(registry.dropIdle(Date.now() + RUNTIME_IDLE_MS / 2), 'nothing is idle long enough yet').toBe(0);
      expect(registry.dropIdle(Date.now() + RUNTIME_IDLE_MS + 1)).toBe(198);
      expect(
        registry
          .all()
          .map((r) => r.id)
          .sort(),
      ).toEqual([records[0]!.id, records[1]!.id].sort());

      receiving.inFlight.delete(0);
      finish();
      unlock();
      await held;
      expect(registry.dropIdle(Date.now() + RUNTIME_IDLE_MS + 1)).toBe(2);
      expect(registry.all()).toHaveLength(0);

      // Used again: loaded from the store, with its record as stored.
      const again = await registry.find(records[7]!.id);
      expect(again?.record).toMatchObject({ id: records[7]!.id, path: 'abandoned/7.bin', state: 'open' });
      expect(registry.all()).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});

describe('maxOpenSessions', () => {
  it(
    'refuses a new session beyond the cap with 429 TOO_MANY_SESSIONS naming the option; resumes ' + 'still work',
    async () => {
      const robotA = randomBytes(32).toString('hex');
      const robotB = randomBytes(32).toString('hex');
      const server = await startTestServer({ maxOpenSessions: 3, tokens: [`robotA=${robotA}`, `robotB=${robotB}`] });
      servers.push(server);
      const dir = await createTempDir('session-cap');
      dirs.push(dir);
      const file = path.join(dir.path, 'f.bin');
      await writeFile(file, Buffer.alloc(4096, 1));
      const ids: string[] = [];
      for (const n of [1, 2]) {
        const answer = await createSession(server.url, file, { path: `cap/${n}.bin` }, { token: robotA });
        expect(answer.status).toBe(201);
        ids.push(answer.json.id as string);
      }
      const legacy = await legacyPost(
        server.url,
        '/upload/init',
        { filename: 'cap/3.bag', filesize: 10, chunks: 1 },
        robotA,
      );
      expect(legacy.status).toBe(200);

      const refused = await createSession(server.url, file, { path: 'cap/4.bin' }, { token: robotA });
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ success: false, code: 'TOO_MANY_SESSIONS', retryAfter: 60 });
      expect(String(refused.json.error)).toMatch(/3 unfinished upload sessions.*maxOpenSessions 3/);
      expect(refused.headers.get('retry-after')).toBe('60');
      const refusedLegacy = await legacyPost(
        server.url,
        '/upload/init',
        { filename: 'cap/5.bag', filesize: 10, chunks: 1 },
        robotA,
      );
      expect(refusedLegacy.status).toBe(429);
      expect(refusedLegacy.json).toMatchObject({ code: 'TOO_MANY_SESSIONS' });

      // A resume is not a new session; another uploader has its own count.
      const resumed = await createSession(server.url, file, { path: 'cap/1.bin' }, { token: robotA });
      expect(resumed.status).toBe(200);
      expect(resumed.json).toMatchObject({ id: ids[0], resumed: true });
      expect((await createSession(server.url, file, { path: 'cap/4.bin' }, { token: robotB })).status).toBe(201);

      // A cancelled session makes room.
      expect((await call(server.url, 'DELETE', routes.session(ids[1]!), undefined, { token: robotA })).status).toBe(
        204,
      );
      expect((await createSession(server.url, file, { path: 'cap/4.bin' }, { token: robotA })).status).toBe(201);
    },
  );
});
