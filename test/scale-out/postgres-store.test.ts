import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Options } from 'express-rate-limit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SharedRateLimitStore } from '../../server/http/shared-rate-limit-store.js';
import { SavedPrefixHash } from '../../server/integrity/saved-prefix-hash.js';
import { POSTGRES_SCHEMA_VERSION } from '../../server/sessions/postgres-schema.js';
import { PostgresSessionStore } from '../../server/sessions/postgres-session-store.js';
import type { SessionRecord } from '../../server/sessions/session-record.js';
import { usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The PostgreSQL session store as replicas use it: two store instances on one database are two
 * replicas. Migrations, the atomic create-or-resume, acknowledging a chunk with the prefix hash
 * it advances, advisory locks, shared rate-limit counters.
 */
const stores: PostgresSessionStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
});

const databaseUrl = withEngines(async () => createDatabase(await usePostgres(), 'store'));

async function replica(): Promise<PostgresSessionStore> {
  const store = await PostgresSessionStore.open(databaseUrl(), { poolSize: 4, where: 'the test database' });
  stores.push(store);
  return store;
}

function session(fields: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now();
  return {
    id: randomUUID(),
    api: 'native',
    uploader: 'robot-1',
    path: `bag/${randomBytes(4).toString('hex')}.mcap`,
    size: 30,
    fingerprint: 'fp1:abc',
    chunkSize: 10,
    chunkCount: 3,
    sha256Hint: null,
    md5Expected: null,
    metadata: { robot: 'r1' },
    replace: false,
    compress: false,
    state: 'open',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 60_000,
    result: null,
    ...fields,
  };
}

describe('PostgreSQL session store', () => {
  it('migrates once when replicas start together, and refuses a database of a newer schema', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT value FROM meta WHERE key = 'schema_version'`);
      expect(rows).toEqual([{ value: String(POSTGRES_SCHEMA_VERSION) }]);
      await client.query(`UPDATE meta SET value = '99' WHERE key = 'schema_version'`);
      await expect(replica()).rejects.toMatchObject({
        code: 'STATE_DIR',
        message: expect.stringMatching(/newer version.*schema 99/),
      });
      await client.query(`UPDATE meta SET value = $1 WHERE key = 'schema_version'`, [String(POSTGRES_SCHEMA_VERSION)]);
    } finally {
      await client.end();
    }
  });

  it('two replicas creating one file identity at once end with one session', async () => {
    const [a, b] = [await replica(), await replica()];
    for (let round = 0; round < 10; round += 1) {
      const first = session();
      const second = { ...first, id: randomUUID(), replace: true };
      const outcomes = await Promise.all([a.createOrResume(first), b.createOrResume(second)]);
      expect(outcomes.map((outcome) => outcome.resumed).sort()).toEqual([false, true]);
      expect(outcomes[0]!.session.id).toBe(outcomes[1]!.session.id);
      expect(await a.openSessionsFor(first.uploader, first.path)).toHaveLength(1);
    }
  });

  it('acknowledges a chunk with the prefix hash it advances (compare-and-set); a gone session refuses', async () => {
    const store = await replica();
    const record = session({ api: 'legacy' });
    await store.insertSession(record);
    expect(await store.savedPrefix(record.id)).toBeUndefined();

    // Replica A hashes chunk 0 and saves the state with the chunk; replica B loads it and goes on.
    const data = [randomBytes(10), randomBytes(10), randomBytes(10)];
    const onA = await SavedPrefixHash.load(true, undefined);
    const forkA = await onA.fork();
    for (const hash of forkA.hashes) hash.update(data[0]!);
    const afterFirst = onA.savedAfter(forkA, 10);
    await store.ackChunk(record.id, { index: 0, size: 10, crc: 1, offset: 0 }, Date.now(), Date.now() + 1000, {
      from: 0,
      next: afterFirst,
    });
    const onB = await SavedPrefixHash.load(true, await store.savedPrefix(record.id));
    expect(onB.chunks).toBe(1);
    const forkB = await onB.fork();
    for (const hash of forkB.hashes) hash.update(data[1]!);
    // A stale writer (still at 0 chunks) does not move the prefix back.
    await store.ackChunk(record.id, { index: 0, size: 10, crc: 1, offset: 0 }, Date.now(), Date.now() + 1000, {
      from: 0,
      next: afterFirst,
    });
    expect(await store.savePrefix(record.id, 0, afterFirst)).toBe(false);
    expect(await store.savePrefix(record.id, 1, onB.savedAfter(forkB, 10))).toBe(true);
    const onC = await SavedPrefixHash.load(true, await store.savedPrefix(record.id));
    const forkC = await onC.fork();
    for (const hash of forkC.hashes) hash.update(data[2]!);
    onC.adopt(forkC, 10);
    const whole = Buffer.concat(data);
    expect(await onC.digest()).toEqual({
      sha256: createHash('sha256').update(whole).digest('hex'),
      md5: createHash('md5').update(whole).digest('hex'),
    });
    expect((await store.chunks(record.id)).map((chunk) => chunk.index)).toEqual([0]);

    await store.deleteSession(record.id);
    await expect(
      store.ackChunk(record.id, { index: 1, size: 10, crc: 2, offset: 10 }, Date.now(), Date.now() + 1000),
    ).rejects.toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });

  it('completes a session and indexes its file together; files list newest first', async () => {
    const store = await replica();
    const record = session();
    await store.insertSession(record);
    await store.ackChunk(record.id, { index: 0, size: 30, crc: 7, offset: 0 }, Date.now(), Date.now() + 1000);
    const file = {
      uploader: record.uploader,
      path: record.path,
      size: 30,
      sha256: 'a'.repeat(64),
      md5: null,
      fingerprint: 'fp1:abc',
      completedAt: Date.now(),
      metadata: { robot: 'r1' },
      compressedSize: null,
      sessionId: record.id,
    };
    const result = {
      file: { state: 'complete' as const, path: record.path, size: 30, sha256: file.sha256, completedAt: 'now' },
      storedPath: record.path,
      md5: null,
      compressedLocation: null,
      compressionPending: false,
    };
    await store.completeSession(record.id, result, file, Date.now(), Date.now() + 1000);
    expect(await store.getSession(record.id)).toMatchObject({ state: 'complete', result, replace: false });
    expect(await store.chunks(record.id)).toEqual([]);
    expect(await store.getFile(record.uploader, record.path)).toEqual(file);
    await store.setCompressedSize(record.uploader, record.path, 12);
    expect((await store.filesOf(record.uploader, 1000)).find((f) => f.path === record.path)?.compressedSize).toBe(12);
    expect(await store.unfinishedSessionIds()).not.toContain(record.id);
  });

  it('an advisory lock is held by one replica at a time, and released when that replica dies', async () => {
    const [a, b] = [await replica(), await replica()];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let aInside = false;
    const first = a.locks.run('session:x', async () => {
      aInside = true;
      await held;
    });
    await waitFor(() => aInside, 'replica A to hold the lock');
    expect(await b.locks.runIfFree('session:x', async () => 'ran')).toBeUndefined();
    let bRan = false;
    const second = b.locks.run('session:x', async () => {
      bRan = true;
    });
    release();
    await first;
    await second;
    expect(bRan).toBe(true);

    // A replica that dies (its connections close) leaves no lock behind.
    const doomed = await replica();
    let dying!: () => void;
    const inside = new Promise<void>((resolve) => (dying = resolve));
    void doomed.locks.run('job:expiry', () => {
      dying();
      return new Promise(() => {});
    });
    await inside;
    expect(await a.locks.runIfFree('job:expiry', async () => 'ran')).toBeUndefined();
    await doomed.close();
    await waitFor(
      async () => (await a.locks.runIfFree('job:expiry', async () => 'ran')) === 'ran',
      'the lock to be free',
    );
  });

  it('rate-limit counters are one budget for all replicas; a new window starts when the last ended', async () => {
    const [a, b] = [await replica(), await replica()];
    const key = `limit:${randomUUID()}`;
    const now = Date.now();
    const hits = [];
    for (let i = 0; i < 4; i += 1) hits.push((await (i % 2 ? b : a).hitCounter(key, 60_000, now)).hits);
    expect(hits).toEqual([1, 2, 3, 4]);
    expect((await a.hitCounter(key, 60_000, now + 60_001)).hits).toBe(1);
    await b.unhitCounter(key);
    expect((await a.hitCounter(key, 60_000, now + 60_002)).hits).toBe(1);
    expect(await a.pruneCounters(now + 200_000)).toBeGreaterThanOrEqual(1);
  });

  it('counts many hits in one round trip (incrementBy: the byte-rate limit), one budget for all replicas', async () => {
    const [a, b] = [await replica(), await replica()];
    const name = `uploaded bytes ${randomUUID()}`;
    const [storeA, storeB] = [new SharedRateLimitStore(a, name), new SharedRateLimitStore(b, name)];
    storeA.init({ windowMs: 60_000 } as Options);
    storeB.init({ windowMs: 60_000 } as Options);
    expect((await storeA.incrementBy('uploader:robot-1', 16)).totalHits).toBe(16);
    expect((await storeB.incrementBy('uploader:robot-1', 100)).totalHits).toBe(116);
    expect((await storeB.increment('uploader:robot-1')).totalHits).toBe(117);
    expect((await storeA.get('uploader:robot-1'))?.totalHits).toBe(117);
  });

  it('pages expired sessions, counts open ones, pages and deletes index entries, keeps settings', async () => {
    const [a, b] = [await replica(), await replica()];
    const uploader = `robot-${randomUUID()}`;
    const past = Date.now() - 1_000;
    for (let i = 0; i < 3; i += 1) await a.createOrResume(session({ uploader, expiresAt: past - i }));
    await a.createOrResume(session({ uploader }));
    expect(await b.openSessionCount(uploader)).toBe(4);
    const page = await b.expiredSessions(Date.now(), 2);
    expect(page).toHaveLength(2);
    expect(page[0]?.expiresAt).toBeLessThanOrEqual(page[1]?.expiresAt ?? 0);

    const paths = ['b/2.mcap', 'a/1.mcap', 'B/0.mcap', 'a/10.mcap'];
    for (const path of paths)
      await a.putFile({
        uploader,
        path,
        size: 1,
        sha256: '0'.repeat(64),
        md5: null,
        fingerprint: 'fp1:x',
        completedAt: Date.now(),
        metadata: null,
        compressedSize: null,
        sessionId: null,
      });
    const before = await b.countFiles();
    const listed: string[] = [];
    let after: { uploader: string; path: string } | undefined;
    for (;;) {
      const files = await b.listFiles(after, 1);
      if (files.length === 0) break;
      const last = files[files.length - 1];
      if (!last) break;
      if (last.uploader === uploader) listed.push(last.path);
      after = { uploader: last.uploader, path: last.path };
    }
    expect(listed).toEqual(['B/0.mcap', 'a/1.mcap', 'a/10.mcap', 'b/2.mcap']);
    await a.deleteFile(uploader, 'a/1.mcap');
    expect(await b.countFiles()).toBe(before - 1);
    expect(await b.getFile(uploader, 'a/1.mcap')).toBeUndefined();

    expect(await a.getSetting('reconciled_at')).toBeUndefined();
    await a.putSetting('reconciled_at', '12');
    await b.putSetting('reconciled_at', '34');
    expect(await a.getSetting('reconciled_at')).toBe('34');
  });
});
