import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { BagRecord, WebhookDelivery } from '../../server/sessions/fleet-records.js';
import { PostgresSessionStore } from '../../server/sessions/postgres-session-store.js';
import type { FileRecord, SessionRecord } from '../../server/sessions/session-record.js';
import { usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';

/**
 * The fleet view's tables in the PostgreSQL session store (postgres-fleet.ts): announcements of
 * stored files into bags and webhook deliveries, the delivery queue, uploader statistics. Two
 * store instances on one database are two replicas.
 */
const stores: PostgresSessionStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
});

const databaseUrl = withEngines(async () => createDatabase(await usePostgres(), 'fleet'));

async function replica(): Promise<PostgresSessionStore> {
  const store = await PostgresSessionStore.open(databaseUrl(), { poolSize: 4, where: 'the test database' });
  stores.push(store);
  return store;
}

function uploaderName(): string {
  return `robot-${randomBytes(4).toString('hex')}`;
}

function fileRecord(uploader: string, path: string, fields: Partial<FileRecord> = {}): FileRecord {
  return {
    uploader,
    path,
    size: 5_000_000_000,
    sha256: 'a'.repeat(64),
    md5: null,
    fingerprint: 'fp1:abc',
    completedAt: Date.now(),
    metadata: null,
    compressedSize: null,
    sessionId: null,
    ...fields,
  };
}

function bagRecord(uploader: string, folder: string, fields: Partial<BagRecord> = {}): BagRecord {
  const now = Date.now();
  return {
    uploader,
    folder,
    metadataSha256: 'b'.repeat(64),
    expected: ['run_0.mcap'],
    metadataError: null,
    storageIdentifier: 'mcap',
    missing: [],
    files: 2,
    bytes: 5_000_000_123,
    complete: true,
    completedAt: now,
    eventId: randomUUID(),
    firstAt: now - 1000,
    updatedAt: now,
    ...fields,
  };
}

function delivery(fields: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    id: randomUUID(),
    hook: 'bag',
    body: JSON.stringify({ event: 'bag.complete' }),
    createdAt: Date.now(),
    attempts: 0,
    nextAttemptAt: Date.now(),
    lastError: null,
    ...fields,
  };
}

function session(uploader: string, path: string): SessionRecord {
  const now = Date.now();
  return {
    id: randomUUID(),
    api: 'native',
    uploader,
    path,
    size: 30,
    fingerprint: 'fp1:abc',
    chunkSize: 10,
    chunkCount: 3,
    sha256Hint: null,
    md5Expected: null,
    metadata: null,
    replace: false,
    compress: false,
    state: 'open',
    createdAt: now,
    updatedAt: now,
    expiresAt: now + 60_000,
    result: null,
  };
}

describe('PostgreSQL fleet tables', () => {
  it('announces a completed file: the bag view reflects it, its deliveries are queued, once', async () => {
    const [a, b] = [await replica(), await replica()];
    const uploader = uploaderName();
    const folder = '2024-05-01/run1';
    const record = session(uploader, `${folder}/run_0.mcap`);
    await a.insertSession(record);
    await a.ackChunk(record.id, { index: 0, size: 30, crc: 7, offset: 0 }, Date.now(), Date.now() + 1000);
    const file = fileRecord(uploader, record.path, { sessionId: record.id });
    const result = {
      file: { state: 'complete' as const, path: record.path, size: 30, sha256: file.sha256, completedAt: 'now' },
      storedPath: record.path,
      md5: null,
      compressedLocation: null,
      compressionPending: false,
    };
    await a.completeSession(record.id, result, file, Date.now(), Date.now() + 1000);

    const pending = (await b.fleet.filesToAnnounce(1000)).filter((f) => f.uploader === uploader);
    expect(pending).toEqual([{ ...file, hooks: true }]);
    const bag = bagRecord(uploader, folder);
    const queued = delivery();
    const announcement = { file: { uploader, path: file.path, sha256: file.sha256 }, bag, deliveries: [queued] };
    // Two replicas announce the same file at once: one records it.
    expect((await Promise.all([a.fleet.announce(announcement), b.fleet.announce(announcement)])).sort()).toEqual([
      false,
      true,
    ]);
    expect((await a.fleet.filesToAnnounce(1000)).filter((f) => f.uploader === uploader)).toEqual([]);

    expect(await b.fleet.getBag(uploader, folder)).toEqual(bag);
    expect(await b.fleet.getBag(uploader, 'elsewhere')).toBeUndefined();
    expect(await b.fleet.listBags({ uploader, limit: 10 })).toEqual([bag]);
    expect(await b.fleet.listBags({ uploader, complete: true, limit: 10 })).toEqual([bag]);
    expect(await b.fleet.listBags({ uploader, complete: false, limit: 10 })).toEqual([]);
    const incomplete = bagRecord(uploader, 'older', { complete: false, completedAt: null, updatedAt: 1000 });
    const other = fileRecord(uploader, 'older/run_0.mcap');
    await a.putFile(other);
    expect(
      await a.fleet.announce({
        file: { uploader, path: other.path, sha256: other.sha256 },
        bag: incomplete,
        deliveries: [],
      }),
    ).toBe(true);
    expect((await b.fleet.listBags({ uploader, limit: 10 })).map((x) => x.folder)).toEqual([folder, 'older']);
    expect(await b.fleet.listBags({ uploader, complete: false, limit: 10 })).toEqual([incomplete]);
    const counts = await b.fleet.bagCounts();
    expect(counts.complete).toBeGreaterThanOrEqual(1);
    expect(counts.incomplete).toBeGreaterThanOrEqual(1);
    expect(counts.oldestIncompleteUpdate).toBe(1000);

    expect((await b.fleet.filesIn(uploader, folder)).map((f) => f.path)).toEqual([file.path]);
    expect((await b.fleet.recentFiles(1000)).map((f) => f.path)).toContain(file.path);
    expect((await b.fleet.dueDeliveries(Date.now(), 1000)).find((d) => d.id === queued.id)).toEqual(queued);

    // The same record written again (a deduplicated completion) is not pending again; new content is.
    await b.putFile(file);
    expect((await a.fleet.filesToAnnounce(1000)).filter((f) => f.uploader === uploader)).toEqual([]);
    expect(await a.fleet.announce(announcement)).toBe(false);
    const replaced = { ...file, sha256: 'c'.repeat(64), completedAt: file.completedAt + 1 };
    await b.putFile(replaced);
    expect((await a.fleet.filesToAnnounce(1000)).filter((f) => f.uploader === uploader)).toEqual([
      { ...replaced, hooks: true },
    ]);
    // An announcement of the content it replaced writes nothing.
    expect(await a.fleet.announce(announcement)).toBe(false);
  });

  it('lists only the files directly inside a folder, and open sessions with the bytes they hold', async () => {
    const store = await replica();
    const uploader = uploaderName();
    for (const path of ['bag/a.mcap', 'bag/metadata.yaml', 'bag/sub/b.mcap', 'bag0/c.mcap', 'bag.mcap', 'bah/d'])
      await store.putFile(fileRecord(uploader, path));
    expect((await store.fleet.filesIn(uploader, 'bag')).map((f) => f.path).sort()).toEqual([
      'bag/a.mcap',
      'bag/metadata.yaml',
    ]);
    const record = session(uploader, 'open/x.mcap');
    await store.insertSession(record);
    await store.ackChunk(record.id, { index: 0, size: 10, crc: 1, offset: 0 }, Date.now(), Date.now() + 1000);
    await store.ackChunk(record.id, { index: 1, size: 10, crc: 2, offset: 10 }, Date.now(), Date.now() + 1000);
    const summary = (await store.fleet.openSessionSummaries()).find((s) => s.id === record.id);
    expect(summary).toEqual({
      id: record.id,
      api: 'native',
      uploader,
      path: record.path,
      size: 30,
      receivedBytes: 20,
      createdAt: record.createdAt,
      updatedAt: expect.any(Number),
    });
  });

  it('queues deliveries: due, rescheduled, deleted, counted and dropped by hook', async () => {
    const [a, b] = [await replica(), await replica()];
    for (const hook of ['file', 'bag'] as const) await a.fleet.dropDeliveries(hook);
    expect(await a.fleet.nextDeliveryAt()).toBeUndefined();
    expect(await a.fleet.pendingDeliveries()).toEqual({ file: 0, bag: 0 });

    const now = Date.now();
    const first = delivery({ hook: 'file', nextAttemptAt: now - 10 });
    const second = delivery({ hook: 'bag', nextAttemptAt: now - 5 });
    const later = delivery({ hook: 'file', nextAttemptAt: now + 60_000 });
    const uploader = uploaderName();
    await a.putFile(fileRecord(uploader, 'x/1.mcap'));
    expect(
      await a.fleet.announce({
        file: { uploader, path: 'x/1.mcap', sha256: 'a'.repeat(64) },
        bag: undefined,
        deliveries: [later, second, first, first],
      }),
    ).toBe(true);
    expect(await b.fleet.dueDeliveries(now, 10)).toEqual([first, second]);
    expect(await b.fleet.dueDeliveries(now, 1)).toEqual([first]);
    expect(await b.fleet.nextDeliveryAt()).toBe(first.nextAttemptAt);
    expect(await b.fleet.pendingDeliveries()).toEqual({ file: 2, bag: 1 });

    await b.fleet.rescheduleDelivery(first.id, 1, now + 30_000, 'HTTP 503');
    expect(await a.fleet.dueDeliveries(now, 10)).toEqual([second]);
    expect(await a.fleet.nextDeliveryAt()).toBe(second.nextAttemptAt);
    expect((await a.fleet.dueDeliveries(now + 30_000, 10))[1]).toEqual({
      ...first,
      attempts: 1,
      nextAttemptAt: now + 30_000,
      lastError: 'HTTP 503',
    });

    await a.fleet.deleteDelivery(second.id);
    expect(await b.fleet.pendingDeliveries()).toEqual({ file: 2, bag: 0 });
    expect(await b.fleet.nextDeliveryAt()).toBe(now + 30_000);
    expect(await b.fleet.dropDeliveries('file')).toBe(2);
    expect(await b.fleet.pendingDeliveries()).toEqual({ file: 0, bag: 0 });
    expect(await b.fleet.nextDeliveryAt()).toBeUndefined();
  });

  it('saves uploader statistics and reads them back, replacing earlier ones', async () => {
    const [a, b] = [await replica(), await replica()];
    const [one, two] = [uploaderName(), uploaderName()];
    const stats = [
      {
        uploader: one,
        lastSeen: Date.now(),
        day: '2026-12-04',
        bytesDay: 6_000_000_000,
        filesDay: 3,
        bytesTotal: 9_000_000_000_000,
        filesTotal: 40,
      },
      { uploader: two, lastSeen: null, day: '2026-12-03', bytesDay: 0, filesDay: 0, bytesTotal: 1, filesTotal: 1 },
    ];
    await a.fleet.saveUploaderStats(stats);
    await a.fleet.saveUploaderStats([]);
    const mine = (all: Awaited<ReturnType<PostgresSessionStore['fleet']['uploaderStats']>>) =>
      all.filter((s) => s.uploader === one || s.uploader === two).sort((x, y) => x.day.localeCompare(y.day));
    expect(mine(await b.fleet.uploaderStats())).toEqual([stats[1], stats[0]]);
    const updated = { ...stats[1]!, lastSeen: 5, day: '2026-12-05', bytesDay: 7, filesDay: 1, filesTotal: 2 };
    await b.fleet.saveUploaderStats([updated]);
    expect(mine(await a.fleet.uploaderStats())).toEqual([stats[0], updated]);
  });
});
