import { symlink, mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
import { sha256Of } from '../helpers/random-file.js';
import {
  EventLog,
  KiB,
  MiB,
  createWorld,
  uploadStarts,
  waitFor,
  waitForCompletion,
  waitForFailure,
  type EngineWorld,
} from './harness.js';

describe('NetworkManager and what the server answers', () => {
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

  it('honours 429 and 503 Retry-After without using up an attempt (maxRetries 0)', async () => {
    const file = await world.randomFile('limited.bin', 1 * MiB);
    front.inject((req, count) => {
      if (req.method === 'POST' && req.url === '/v1/sessions' && count === 0)
        return {
          status: 503,
          headers: { 'retry-after': '1' },
          body: { success: false, error: 'shutting down', code: 'SERVER_UNAVAILABLE' },
        };
      if (req.method === 'PUT' && /\/chunks\/1$/.test(req.url ?? '') && count < 2)
        return {
          status: 429,
          headers: { 'retry-after': '1' },
          body: { success: false, error: 'Too many chunk requests', code: 'RATE_LIMITED', retryAfter: 1 },
        };
      return undefined;
    });
    const manager = world.manager({ serverUrl: front.url, chunkSize: 256 * KiB, maxRetries: 0 });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/limited.bin' });
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('answers/limited.bin')).toBe(file.sha256);

    const retries = log.of('retrying');
    expect(retries.map((r) => r.delay)).toEqual([1, 1, 1]);
    expect(retries[0]!.reason).toContain('SERVER_UNAVAILABLE');
    expect(retries[1]!.reason).toContain('429 RATE_LIMITED');
    // The wait was honoured: each retry came at least about Retry-After after the refusal.
    const chunk1 = front.requests('PUT', /\/chunks\/1$/);
    expect(chunk1.map((r) => r.status)).toEqual([429, 429, 200]);
    const sessions = front.requests('POST', /^\/v1\/sessions$/);
    expect(sessions.map((r) => r.status)).toEqual([503, 201]);
    expect(chunk1[1]!.at - chunk1[0]!.at).toBeGreaterThanOrEqual(900);
    expect(sessions[1]!.at - sessions[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('a 400 (a path the server refuses) fails the file with the server message after 3 retries', async () => {
    // A folder in the uploader's storage that is a symlink out of the storage root.
    const outside = path.join(world.dir.path, 'outside');
    await mkdir(outside, { recursive: true });
    const uploaderRoot = path.join(world.server.uploadDir, 'completed', 'anonymous');
    await mkdir(uploaderRoot, { recursive: true });
    await symlink(outside, path.join(uploaderRoot, 'escape'));
    const file = await world.randomFile('refused.bin', 100 * KiB);
    const manager = world.manager({ serverUrl: front.url, maxRetries: 5 });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'escape/refused.bin' });
    const failed = await waitForFailure(manager, id);
    expect(failed.code).toBe('INVALID_PATH');
    expect(failed.reason).toContain(file.path);
    expect(failed.reason).toMatch(/400 INVALID_PATH: .*(symlink|symbolic link)/i);
    expect(manager.upload(id)).toMatchObject({ state: 'failed', errorCode: 'INVALID_PATH' });
    // One request (a 100 KiB file goes whole in one PUT; a larger one would create a session),
    // refused, and sent again only 3 times (a damaged byte could have caused the refusal).
    expect(uploadStarts(front).map((r) => r.status)).toEqual([400, 400, 400, 400]);
    expect(front.requests('PUT', /chunks/)).toHaveLength(0);
    expect(log.count('retrying')).toBe(3);
  });

  it('retryFailed() puts failed uploads back in the queue', async () => {
    const file = await world.randomFile('again.bin', 100 * KiB);
    // The first request of the upload (a whole-file PUT for this size, or a session's create) is refused.
    // (A 400 is sent 4 times in all before the file fails: the first 4 attempts are refused.)
    const firstUploadRequest = (req: { method?: string; url?: string }, count: number): boolean =>
      count < 4 &&
      ((req.method === 'POST' && req.url === '/v1/sessions') ||
        (req.method === 'PUT' && (req.url ?? '').startsWith('/v1/files/')));
    front.inject((req, count) =>
      firstUploadRequest(req, count)
        ? { status: 400, body: { success: false, error: 'metadata is refused today', code: 'INVALID_FIELD' } }
        : undefined,
    );
    const manager = world.manager({ serverUrl: front.url });
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/again.bin' });
    const failed = await waitForFailure(manager, id);
    expect(failed.reason).toContain('metadata is refused today');
    expect(manager.retryFailed()).toBe(1);
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(manager.retryFailed()).toBe(0);
  });

  it('does not send a file the server already holds (dedup), and replaces one that only looks the same', async () => {
    const file = await world.randomFile('dedup.bin', 3 * MiB);
    const first = world.manager();
    await first.start();
    await waitForCompletion(first, await first.addUpload(file.path, { remotePath: 'answers/dedup.bin' }));

    // The same manager again (the journal knows the SHA-256), and a fresh one that must hash locally.
    const again = await first.addUpload(file.path, { remotePath: 'answers/dedup.bin' });
    expect((await waitForCompletion(first, again)).deduplicated).toBe(true);
    await first.stop();
    const before = world.proxy.stats.bytesUp;
    const fresh = world.manager();
    await fresh.start();
    const dup = await waitForCompletion(fresh, await fresh.addUpload(file.path, { remotePath: 'answers/dedup.bin' }));
    expect(dup).toMatchObject({ deduplicated: true, sha256: file.sha256 });
    expect(world.proxy.stats.bytesUp - before).toBeLessThan(16 * KiB);

    // Same size, same first and last MiB (so the same fingerprint), different middle.
    const { readFile } = await import('node:fs/promises');
    const changed = Buffer.from(await readFile(file.path));
    changed.fill(7, 1.5 * MiB, 1.5 * MiB + 100);
    const lookalike = await world.writeFile('lookalike.bin', changed);
    const third = world.manager();
    await third.start();
    const replaced = await waitForCompletion(
      third,
      await third.addUpload(lookalike.path, { remotePath: 'answers/dedup.bin' }),
    );
    expect(replaced).toMatchObject({ deduplicated: false, sha256: lookalike.sha256 });
    expect(await world.storedSha('answers/dedup.bin')).toBe(lookalike.sha256);
  });

  it('a file that changes during its upload restarts cleanly and the server gets the new content', async () => {
    const file = await world.randomFile('changing.bin', 2 * MiB);
    const manager = world.manager({ chunkSize: 256 * KiB, bandwidthLimit: 1 * MiB });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/changing.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 300 * KiB, 'the first chunk');
    const fresh = randomBytes(2 * MiB + 999);
    await writeFile(file.path, fresh);
    await utimes(file.path, new Date(), new Date(Date.now() + 5000));
    manager.bandwidthLimit = 0;
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(sha256Of(fresh));
    expect(await world.storedSha('answers/changing.bin')).toBe(sha256Of(fresh));
    expect(log.of('retrying').some((r) => /changed/.test(r.reason))).toBe(true);
  });

  it('a queued file that changed before its turn is sent as it is now', async () => {
    const file = await world.randomFile('queued.bin', 300 * KiB);
    const manager = world.manager();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/queued.bin' });
    const now = randomBytes(400 * KiB);
    await writeFile(file.path, now);
    await manager.start();
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(sha256Of(now));
    expect(manager.upload(id)?.bytesTotal).toBe(now.length);
  });

  it('re-sends the chunks completion reports missing; starts over when the whole file fails its checksum', async () => {
    const file = await world.randomFile('repair.bin', 1 * MiB);
    let completes = 0;
    front.inject((req) => {
      if (req.method !== 'POST' || !/\/complete$/.test(req.url ?? '')) return undefined;
      const count = completes++;
      if (count === 0)
        return {
          status: 409,
          body: { success: false, error: 'chunks 1 and 2 are missing', code: 'CHUNKS_MISSING', missing: [1, 2] },
        };
      if (count === 1)
        return {
          status: 422,
          body: {
            success: false,
            error: 'SHA-256 mismatch; every chunk passed',
            code: 'FILE_CHECKSUM_MISMATCH',
            missing: [0, 1, 2, 3],
          },
        };
      return undefined;
    });
    const manager = world.manager({ serverUrl: front.url, chunkSize: 256 * KiB });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/repair.bin' });
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('answers/repair.bin')).toBe(file.sha256);
    const puts = front.requests('PUT', /\/chunks\//).map((r) => Number(/(\d+)$/.exec(r.path)![1]));
    // First pass, the two re-sent after CHUNKS_MISSING, then everything again in a fresh session.
    expect(puts).toEqual([0, 1, 2, 3, 1, 2, 0, 1, 2, 3]);
    expect(front.requests('DELETE', /^\/v1\/sessions\//)).toHaveLength(1);
    expect(log.of('retrying').some((r) => /whole-file SHA-256/.test(r.reason))).toBe(true);
  });

  it('when an answer is lost after the whole chunk went out, asks the server instead of sending it again', async () => {
    // engine → TCP proxy (cuts answers) → HTTP front (counts requests) → server
    const { FaultProxy } = await import('../helpers/fault-proxy.js');
    const cutter = await FaultProxy.start({ port: front.port });
    try {
      const file = await world.randomFile('lost-answer.bin', 512 * KiB);
      // The create answer passes; the first chunk's answer is cut off.
      cutter.setFaults({ dropAfter: { bytes: 400, direction: 'down', times: 1 } });
      const manager = world.manager({ serverUrl: cutter.url(), chunkSize: 256 * KiB });
      await manager.start();
      const id = await manager.addUpload(file.path, { remotePath: 'answers/lost-answer.bin' });
      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toBe(file.sha256);
      expect(cutter.stats.drops).toBe(1);
      expect(front.requests('PUT', /\/chunks\/0$/)).toHaveLength(1);
      expect(front.requests('GET', /^\/v1\/sessions\/[^/]+$/)).toHaveLength(1);
    } finally {
      await cutter.close();
    }
  });

  it('cancel() aborts an upload, forgets it and deletes its server session', async () => {
    const file = await world.randomFile('cancel.bin', 2 * MiB);
    const manager = world.manager({ serverUrl: front.url, chunkSize: 256 * KiB, bandwidthLimit: 512 * KiB });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'answers/cancel.bin' });
    await waitFor(() => (manager.upload(id)?.bytesSent ?? 0) >= 300 * KiB, 'progress');
    expect(await manager.cancel(id)).toBe(true);
    expect(manager.upload(id)).toBeUndefined();
    expect(log.of('cancelled')[0]!.id).toBe(id);
    const deletes = front.requests('DELETE', /^\/v1\/sessions\//);
    expect(deletes.map((d) => d.status)).toEqual([204]);
    expect(await manager.cancel(id)).toBe(false);
    expect(log.count('failed')).toBe(0);
  });
});
