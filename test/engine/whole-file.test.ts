import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
import {
  EventLog,
  KiB,
  MiB,
  createWorld,
  uploadStarts,
  waitForCompletion,
  waitForFailure,
  type EngineWorld,
} from './harness.js';

/** Small files go whole in one request (PUT /v1/files/<path>), with every guarantee of a session. */
describe('NetworkManager: a small file in one request', () => {
  let world: EngineWorld;
  let front: HttpFaultFront;
  beforeEach(async () => {
    world = await createWorld();
    front = await HttpFaultFront.start({ target: world.proxy.url() });
  });
  afterEach(async () => {
    await front.close();
    await world.close();
  });

  it('sends each small file in one request: no session, no chunk, no complete; events as for a session', async () => {
    const files = await Promise.all([0, 1, 2, 3, 4].map((n) => world.randomFile(`small-${n}.bin`, 64 * KiB + n)));
    const manager = world.manager({ serverUrl: front.url });
    const log = new EventLog(manager);
    await manager.start();
    const ids = await manager.addUploads(
      files.map((file, n) => ({ filePath: file.path, options: { remotePath: `whole/small-${n}.bin` } })),
    );
    const done = await Promise.all(
      ids.map((result) => waitForCompletion(manager, 'id' in result ? result.id : 'refused')),
    );
    for (const [n, file] of files.entries()) {
      expect(done[n]).toMatchObject({ sha256: file.sha256, deduplicated: false });
      expect(await world.storedSha(`whole/small-${n}.bin`)).toBe(file.sha256);
    }
    // Counted at the front: one PUT per file, answered 201, and nothing else.
    expect(front.requests('PUT', /^\/v1\/files\/whole\//).map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect(front.log.filter((r) => !/^\/v1\/files\//.test(r.path))).toEqual([]);
    for (const [n] of files.entries()) {
      const id = (ids[n] as { id: string }).id;
      const events = log.entries
        .filter(
          (e) =>
            (e.args[0] as { id?: string; upload?: { id: string } }).id === id ||
            (e.args[0] as { upload?: { id: string } }).upload?.id === id,
        )
        .map((e) => e.event);
      expect(events.indexOf('queued')).toBeLessThan(events.indexOf('started'));
      expect(events.indexOf('started')).toBeLessThan(events.indexOf('completed'));
      expect(manager.upload(id)).toMatchObject({
        state: 'completed',
        bytesSent: files[n]!.size,
        bytesTotal: files[n]!.size,
        sha256: files[n]!.sha256,
      });
    }
  });

  it('a retry after a lost answer gets 200 (already stored): completed once, not reported as a duplicate', async () => {
    const file = await world.randomFile('lost-answer.bin', 200 * KiB);
    // The server stores the file; its answer is cut after the first byte.
    world.proxy.setFaults({ dropAfter: { bytes: 1, direction: 'down', times: 1 } });
    const manager = world.manager();
    const log = new EventLog(manager);
    await manager.start();
    const done = await waitForCompletion(
      manager,
      await manager.addUpload(file.path, { remotePath: 'whole/lost-answer.bin' }),
    );
    expect(done).toMatchObject({ sha256: file.sha256, deduplicated: false });
    expect(await world.storedSha('whole/lost-answer.bin')).toBe(file.sha256);
    expect(world.proxy.stats.drops).toBe(1);
    expect(log.count('retrying')).toBe(1);
    // The body went twice (the retry), never more.
    expect(world.proxy.stats.bytesUp).toBeGreaterThanOrEqual(2 * file.size);
    expect(world.proxy.stats.bytesUp).toBeLessThan(2 * file.size + 8 * KiB);
  });

  it('a body damaged on the way is refused by the server (SHA-256) and sent again', async () => {
    const file = await world.randomFile('flipped.bin', 300 * KiB);
    world.proxy.setFaults({ flipBitAt: { offset: 100_000, bit: 5, times: 1 } });
    const manager = world.manager();
    const log = new EventLog(manager);
    await manager.start();
    const done = await waitForCompletion(
      manager,
      await manager.addUpload(file.path, { remotePath: 'whole/flipped.bin' }),
    );
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('whole/flipped.bin')).toBe(file.sha256);
    expect(world.proxy.stats.flips).toBe(1);
    expect(log.of('retrying').map((r) => r.reason)).toEqual([expect.stringMatching(/damaged on the way/)]);
  });

  it('dedup: a file the server holds is "already stored"; another is refused, or replaced if asked', async () => {
    const file = await world.randomFile('held.bin', 100 * KiB);
    const first = world.manager({ serverUrl: front.url });
    await first.start();
    await waitForCompletion(first, await first.addUpload(file.path, { remotePath: 'whole/held.bin' }));
    await first.stop();

    // A fresh journal: the agent cannot know; the server discards the body and says so.
    const fresh = world.manager({ serverUrl: front.url });
    await fresh.start();
    const dup = await waitForCompletion(fresh, await fresh.addUpload(file.path, { remotePath: 'whole/held.bin' }));
    expect(dup).toMatchObject({ deduplicated: true, sha256: file.sha256 });
    expect(front.requests('PUT', /^\/v1\/files\/whole\/held\.bin$/).map((r) => r.status)).toEqual([201, 200]);

    // The same manager again (the journal knows its SHA-256): asked for without a body.
    const before = world.proxy.stats.bytesUp;
    const again = await waitForCompletion(fresh, await fresh.addUpload(file.path, { remotePath: 'whole/held.bin' }));
    expect(again.deduplicated).toBe(true);
    expect(world.proxy.stats.bytesUp - before).toBeLessThan(4 * KiB);

    // Another file at that path: refused as a session's create refuses it (FILE_EXISTS), not retried.
    const other = await world.writeFile('other.bin', randomBytes(100 * KiB));
    const refused = await waitForFailure(fresh, await fresh.addUpload(other.path, { remotePath: 'whole/held.bin' }));
    expect(refused.code).toBe('FILE_EXISTS');
    expect(await world.storedSha('whole/held.bin')).toBe(file.sha256);

    // With replace it is replaced, in one request.
    const puts = front.requests('PUT', /^\/v1\/files\//).length;
    const starts = uploadStarts(front).length;
    const replacing = await waitForCompletion(
      fresh,
      await fresh.addUpload(other.path, { remotePath: 'whole/held.bin', replace: true }),
    );
    expect(replacing).toMatchObject({ sha256: other.sha256, deduplicated: false });
    expect(await world.storedSha('whole/held.bin')).toBe(other.sha256);
    expect(
      front
        .requests('PUT', /^\/v1\/files\//)
        .slice(puts)
        .map((r) => r.status),
    ).toEqual([201]);
    expect(uploadStarts(front)).toHaveLength(starts + 1);
  });

  it.each([404, 405])(
    'falls back to sessions when the server has no whole-file route (%i), and remembers it',
    async (status) => {
      front.inject((req) =>
        req.method === 'PUT' && (req.url ?? '').startsWith('/v1/files/')
          ? {
              status,
              body: {
                success: false,
                error: `No route PUT ${req.url}`,
                code: status === 404 ? 'ROUTE_NOT_FOUND' : 'BAD_REQUEST',
              },
            }
          : undefined,
      );
      const files = await Promise.all([0, 1, 2].map((n) => world.randomFile(`old-${n}.bin`, 50 * KiB)));
      const manager = world.manager({ serverUrl: front.url, maxConcurrentUploads: 1 });
      const log = new EventLog(manager);
      await manager.start();
      for (const [n, file] of files.entries()) {
        const done = await waitForCompletion(
          manager,
          await manager.addUpload(file.path, { remotePath: `old/old-${n}.bin` }),
        );
        expect(done.sha256).toBe(file.sha256);
        expect(await world.storedSha(`old/old-${n}.bin`)).toBe(file.sha256);
      }
      // One whole-file attempt, then sessions only: create, one chunk and complete per file.
      expect(front.requests('PUT', /^\/v1\/files\//).map((r) => r.status)).toEqual([status]);
      expect(front.requests('POST', /^\/v1\/sessions$/)).toHaveLength(3);
      expect(front.requests('PUT', /\/chunks\/0$/)).toHaveLength(3);
      expect(front.requests('POST', /\/complete$/)).toHaveLength(3);
      expect(log.count('failed')).toBe(0);
      expect(log.count('retrying')).toBe(0);
    },
  );

  it('uses a session for a file above the whole-file limit, and for metadata too large for a header', async () => {
    const large = await world.randomFile('large.bin', 1 * MiB + 1);
    const small = await world.randomFile('annotated.bin', 10 * KiB);
    const manager = world.manager({ serverUrl: front.url });
    await manager.start();
    const a = await waitForCompletion(manager, await manager.addUpload(large.path, { remotePath: 'limit/large.bin' }));
    const metadata = { notes: 'x'.repeat(12 * KiB) };
    const b = await waitForCompletion(
      manager,
      await manager.addUpload(small.path, { remotePath: 'limit/annotated.bin', metadata }),
    );
    expect([a.sha256, b.sha256]).toEqual([large.sha256, small.sha256]);
    expect(uploadStarts(front).map((r) => `${r.method} ${r.status}`)).toEqual(['POST 201', 'POST 201']);
    expect(front.requests('PUT', /^\/v1\/files\//)).toHaveLength(0);
    const stored = await readFile(world.server.completedPath('anonymous', 'limit/annotated.bin'));
    expect(stored.length).toBe(small.size);
  });
});
