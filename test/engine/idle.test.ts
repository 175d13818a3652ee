import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLog, KiB, createWorld, waitFor, waitForCompletion, type EngineWorld } from './harness.js';

/**
 * onIdle(): no upload pending (queued, running, retrying, paused, waiting for a slot or for the
 * network); whenSettled(ids): these uploads completed, failed or were cancelled. Both against the
 * real server, through the fault proxy.
 */
describe('NetworkManager.onIdle() and whenSettled()', () => {
  let world: EngineWorld;
  beforeEach(async () => {
    world = await createWorld();
  });
  afterEach(async () => {
    await world.close();
  });

  it('resolves once every upload completed or failed, after their events', async () => {
    const manager = world.manager();
    expect(manager.idle).toBe(true);
    await manager.onIdle(); // nothing queued: at once
    await manager.start();
    // A different file already stored at taken.bin: a second one there is refused for good (FILE_EXISTS).
    const first = await world.randomFile('first.bin', 20 * KiB);
    await waitForCompletion(manager, await manager.addUpload(first.path, { remotePath: 'taken.bin' }));
    const files = await Promise.all([
      world.randomFile('a.bin', 300 * KiB),
      world.randomFile('b.bin', 40 * KiB),
      world.randomFile('other.bin', 20 * KiB),
    ]);
    const log = new EventLog(manager);
    const results = await manager.addUploads([
      { filePath: files[0].path, options: { remotePath: 'idle/a.bin' } },
      { filePath: files[1].path, options: { remotePath: 'idle/b.bin' } },
      { filePath: files[2].path, options: { remotePath: 'taken.bin' } },
    ]);
    const ids = results.map((result) => ('id' in result ? result.id : ''));
    expect(manager.idle).toBe(false);
    let eventsBeforeIdle = -1;
    await manager.onIdle().then(() => (eventsBeforeIdle = log.entries.length));
    expect(manager.idle).toBe(true);
    const outcomes = log.entries
      .slice(0, eventsBeforeIdle)
      .filter((entry) => entry.event === 'completed' || entry.event === 'failed');
    expect(outcomes.map((entry) => entry.event).sort()).toEqual(['completed', 'completed', 'failed']);
    const [a, b, refused] = await manager.whenSettled(ids);
    expect([a?.state, b?.state, refused?.state]).toEqual(['completed', 'completed', 'failed']);
    expect(refused?.errorCode).toBe('FILE_EXISTS');
    // Settled already: answers at once; an unknown id gives undefined.
    expect(await manager.whenSettled(['no-such-upload'])).toEqual([undefined]);
    // retryFailed() makes the failed one pending again.
    expect(manager.retryFailed()).toBe(1);
    expect(manager.idle).toBe(false);
    await manager.onIdle();
  });

  it('files waiting for the network are pending: not idle while the server is unreachable', async () => {
    const manager = world.manager({ maxRetries: 1 });
    await manager.start();
    await world.proxy.setDown(true);
    const file = await world.randomFile('offline.bin', 64 * KiB);
    const id = await manager.addUpload(file.path, { remotePath: 'offline/f.bin' });
    let idle = false;
    void manager.onIdle().then(() => (idle = true));
    await waitFor(() => !manager.online, 'the manager to go offline');
    // Offline, with the upload waiting for the server: it will go on by itself, so it is not settled.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(idle).toBe(false);
    expect(manager.idle).toBe(false);
    expect(manager.upload(id)?.state).not.toBe('failed');
    await world.proxy.setDown(false);
    await waitFor(() => idle, 'onIdle once the server is back', 30_000);
    expect(manager.upload(id)?.state).toBe('completed');
    expect(await world.storedSha('offline/f.bin')).toBe(file.sha256);
  });

  it('a paused manager with queued uploads is not idle; whenSettled gives cancelled ones a snapshot', async () => {
    const manager = world.manager();
    await manager.start();
    manager.pause();
    const keep = await world.randomFile('keep.bin', 30 * KiB);
    const drop = await world.randomFile('drop.bin', 30 * KiB);
    const keepId = await manager.addUpload(keep.path, { remotePath: 'paused/keep.bin' });
    const dropId = await manager.addUpload(drop.path, { remotePath: 'paused/drop.bin' });
    const settled = manager.whenSettled([keepId, dropId]);
    let idle = false;
    void manager.onIdle().then(() => (idle = true));
    expect(await manager.cancel(dropId)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(idle).toBe(false);
    manager.resume();
    const [kept, dropped] = await settled;
    expect(kept).toMatchObject({ id: keepId, state: 'completed' });
    expect(dropped).toMatchObject({ id: dropId, state: 'paused' });
    await waitFor(() => idle, 'onIdle after resume');
  });
});
