import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AnswerGateFront } from '../helpers/answer-gate-front.js';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
import { EventLog, KiB, MiB, createWorld, waitForCompletion, type EngineWorld } from './harness.js';

describe('pipeline: several chunks of a file in flight', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it("sends chunk n + 1 before chunk n's answer arrives (a stop-and-wait client would never finish)", async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('pipelined.bin', 2 * MiB);
    const last = (2 * MiB) / chunkSize - 1;
    // Chunk n's answer is held until chunk n + 1's request has begun.
    const gate = await AnswerGateFront.start(world.proxy.url(), (index, seen) => index === last || seen.has(index + 1));
    try {
      const manager = world.manager({ uploadUrl: gate.url, chunkSize });
      await manager.start();
      const id = await manager.addUpload(file.path, { remotePath: 'pipeline/gated.bin' });
      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toBe(file.sha256);
      expect(await world.storedSha('pipeline/gated.bin')).toBe(file.sha256);
      expect(gate.maxOpen).toBeGreaterThanOrEqual(2);
    } finally {
      await gate.close();
    }
  });

  it('keeps no more than maxChunksInFlight requests waiting for their answers', async () => {
    const chunkSize = 256 * KiB;
    const file = await world.randomFile('bounded.bin', 3 * MiB);
    const last = (3 * MiB) / chunkSize - 1;
    const gate = await AnswerGateFront.start(world.proxy.url(), (index, seen) => index === last || seen.has(index + 1));
    try {
      const manager = world.manager({ uploadUrl: gate.url, chunkSize, maxChunksInFlight: 2 });
      await manager.start();
      const id = await manager.addUpload(file.path, { remotePath: 'pipeline/bounded.bin' });
      expect((await waitForCompletion(manager, id)).sha256).toBe(file.sha256);
      expect(gate.maxOpen).toBe(2);
    } finally {
      await gate.close();
    }
  });

  it('a chunk refused while others are in flight is sent again (reported as a retry); the file is intact', async () => {
    const front = await HttpFaultFront.start({ target: world.proxy.url() });
    try {
      const chunkSize = 256 * KiB;
      const file = await world.randomFile('refused.bin', 3 * MiB);
      front.inject((req, count) =>
        req.method === 'PUT' && /\/chunks\/(3|4)$/.test(req.url ?? '') && count === 0
          ? {
              status: 503,
              headers: { 'retry-after': '0' },
              body: { success: false, error: 'busy', code: 'SERVER_UNAVAILABLE' },
            }
          : undefined,
      );
      const manager = world.manager({ uploadUrl: front.url, chunkSize });
      const log = new EventLog(manager);
      await manager.start();
      const id = await manager.addUpload(file.path, { remotePath: 'pipeline/refused.bin' });
      const done = await waitForCompletion(manager, id);
      expect(done.sha256).toBe(file.sha256);
      expect(await world.storedSha('pipeline/refused.bin')).toBe(file.sha256);
      expect(log.count('retrying')).toBeGreaterThanOrEqual(1);
      // The request for chunk index 3 was refused once, then sent again and stored.
      expect(front.requests('PUT', /\/chunks\/3$/).length).toBe(2);
      expect(log.count('failed')).toBe(0);
    } finally {
      await front.close();
    }
  });
});
