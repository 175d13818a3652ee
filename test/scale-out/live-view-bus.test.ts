import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FleetSnapshot } from '../../common/protocol/fleet-views.js';
import { UploadEventBus } from '../../server/events/upload-events.js';
import { encodeDeltas, type FleetDeltas } from '../../server/fleet/fleet-deltas.js';
import { CHECK_QUIET_MS, FleetView } from '../../server/fleet/fleet-view.js';
import { type FleetBus, InProcessFleetHub } from '../../server/sessions/fleet-bus.js';
import { SqliteSessionStore } from '../../server/sessions/sqlite-session-store.js';
import { LocalDiskStorage } from '../../server/storage/local-disk-storage.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The live view's replica protocol, on the in-process bus (the PostgreSQL bus and real replicas:
 * postgres-fleet-bus.test.ts, replica-live-view.test.ts): what one view reports the other shows,
 * once; reports that cross a session's end never show it again; a member that says goodbye
 * takes its uploads with it.
 */
interface Replica {
  view: FleetView;
  events: UploadEventBus;
  completing: Set<string>;
  store: SqliteSessionStore;
}

const dirs: TempDir[] = [];
const replicas: Replica[] = [];
afterEach(async () => {
  for (const replica of replicas.splice(0)) {
    await replica.view.close();
    await replica.store.close();
  }
  await Promise.all(dirs.splice(0).map((dir) => dir.remove()));
});

async function replica(bus: FleetBus): Promise<Replica> {
  const dir = await createTempDir('live-view-bus');
  dirs.push(dir);
  const store = new SqliteSessionStore(path.join(dir.path, 'uploads.db'));
  const storage = await LocalDiskStorage.open(dir.path);
  const events = new UploadEventBus((error) => {
    throw error;
  });
  const completing = new Set<string>();
  const view = new FleetView({
    store,
    storage,
    events,
    log: captureLogger().logger,
    knownUploaders: [],
    completingIds: () => completing,
    bus,
  });
  await view.start();
  const made = { view, events, completing, store };
  replicas.push(made);
  return made;
}

const base = { api: 'native' as const, uploader: 'robot1', path: 'bag/bag_0.mcap', size: 3_000_000 };

function chunk(sessionId: string, index: number): void {
  replicaA.events.emit('chunk-stored', {
    ...base,
    sessionId,
    index,
    bytes: 1_000_000,
    receivedChunks: index + 1,
    chunkCount: 3,
    receivedBytes: (index + 1) * 1_000_000,
  });
}

let replicaA: Replica;

async function snapshotWhen(of: Replica, condition: (snapshot: FleetSnapshot) => boolean, what: string) {
  return waitFor(async () => {
    const snapshot = await of.view.snapshot('ops');
    return condition(snapshot) ? snapshot : undefined;
  }, what);
}

describe('the live view between replicas (in-process bus)', () => {
  it('shows the other replica its uploads, completions and robot counts, once; an ended one stays ended', async () => {
    const hub = new InProcessFleetHub();
    replicaA = await replica(hub.join());
    const b = await replica(hub.join());
    const raw = hub.join();

    replicaA.events.emit('session-created', { ...base, sessionId: 's1', chunkCount: 3 });
    chunk('s1', 0);
    chunk('s1', 1);
    replicaA.view.seen('robot1');
    const moving = await snapshotWhen(
      b,
      (s) => s.uploads.some((u) => u.id === 's1' && u.receivedBytes === 2_000_000),
      'the upload on B',
    );
    expect(moving.uploads.find((u) => u.id === 's1')).toMatchObject({
      uploader: 'robot1',
      path: base.path,
      size: base.size,
      state: 'receiving',
    });
    expect(moving.robots.find((r) => r.uploader === 'robot1')).toMatchObject({ online: true, uploading: 1 });

    replicaA.completing.add('s1');
    await snapshotWhen(b, (s) => s.uploads.some((u) => u.id === 's1' && u.state === 'completing'), 'completing on B');

    replicaA.events.emit('file-completed', {
      sessionId: 's1',
      api: 'native',
      uploader: 'robot1',
      path: base.path,
      size: base.size,
      sha256: 'a'.repeat(64),
      deduplicated: false,
      completedAt: new Date().toISOString(),
    });
    replicaA.view.failed({
      uploader: 'robot1',
      code: 'CHUNK_CHECKSUM_MISMATCH',
      status: 422,
      message: 'the chunk does not match its SHA-256',
      route: 'PUT /v1/sessions/:id/chunks/:index',
    });
    const done = await snapshotWhen(
      b,
      (s) => s.uploads.length === 0 && s.completions.length === 1 && s.failures.length === 1,
      'completion and failure on B',
    );
    expect(done.completions[0]).toMatchObject({ uploader: 'robot1', path: base.path, size: base.size });
    expect(done.failures[0]).toMatchObject({ uploader: 'robot1', code: 'CHUNK_CHECKSUM_MISMATCH', status: 422 });

    // A late report of s1 from a third member (it crossed the end) does not bring it back; a
    // report of a new upload after it does, so the late one was surely handled before.
    const late: FleetDeltas = {
      u: [['s1', 'robot1', base.path, base.size, 2_500_000, 500_000, Date.now(), Date.now(), 0]],
    };
    for (const message of encodeDeltas(late, raw.maxMessageBytes).messages) await raw.publish(message);
    const next: FleetDeltas = {
      u: [['s2', 'robot2', 'other/x.mcap', 10, 5, 5, Date.now(), Date.now(), 0]],
      r: [['robot2', Date.now(), 5, 0, 0]],
    };
    for (const message of encodeDeltas(next, raw.maxMessageBytes).messages) await raw.publish(message);
    const after = await snapshotWhen(b, (s) => s.uploads.some((u) => u.id === 's2'), 'the new upload on B');
    expect(after.uploads.map((u) => u.id)).toEqual(['s2']);

    // Counted once on both: A's own counts are not echoed back to it.
    for (const view of [replicaA, b]) {
      const snapshot = await snapshotWhen(
        view,
        (s) => s.robots.find((r) => r.uploader === 'robot1')?.filesToday === 1,
        'the file counted',
      );
      expect(snapshot.robots.find((r) => r.uploader === 'robot1')).toMatchObject({
        bytesToday: 2_000_000,
        filesToday: 1,
        errorsLastHour: 1,
      });
    }

    // An upload a member reported long ago whose session is not open in the database (its end was
    // lost: that member's connection was down) is dropped at the next check of quiet uploads.
    const lost: FleetDeltas = {
      u: [['s3', 'robot3', 'lost/x.mcap', 10, 5, 0, Date.now() - 120_000, Date.now() - 90_000, 0]],
    };
    for (const message of encodeDeltas(lost, raw.maxMessageBytes).messages) await raw.publish(message);
    await snapshotWhen(b, (s) => s.uploads.some((u) => u.id === 's3' && u.state === 'stalled'), 'the quiet upload');
    await waitFor(
      async () => !(await b.view.snapshot('ops')).uploads.some((u) => u.id === 's3'),
      'the quiet upload checked and dropped',
      3 * CHECK_QUIET_MS,
    );

    // A member that says goodbye takes the uploads it last reported with it.
    for (const message of encodeDeltas({ bye: 1 }, raw.maxMessageBytes).messages) await raw.publish(message);
    await snapshotWhen(b, (s) => s.uploads.length === 0, "the goodbye member's upload gone");
    // The stream of B's pages said so too: B's open uploads counted only what B itself reported.
    expect(b.view.openUploads).toBe(0);
    await raw.close();
  });
});
