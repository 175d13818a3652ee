import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PEER_SILENT_MS } from '../../server/fleet/fleet-view.js';
import { spawnAgent, type SpawnedAgent } from '../cli/support/spawn-agent.js';
import { type PostgresEngine, type S3Engine, useS3, usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';
import { createBucket, createS3Client } from '../engines/s3.js';
import { type Cluster, startCluster } from '../helpers/cluster.js';
import { type FleetStream, openFleetStream } from '../helpers/fleet-stream.js';
import { RequestGateFront } from '../helpers/request-gate-front.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The dashboard's live view across replicas: two real server processes on one Ceph bucket and
 * one PostgreSQL database; the real agent uploads through one of them, and a viewer's event
 * stream (GET /v1/events, read as the page reads it) connected to the OTHER one sees the
 * upload's progress, its completion, the robot's counts and the bag turning complete; a replica
 * killed with -9 takes its uploads out of the others' view.
 */
const MiB = 1024 * 1024;
const TOKEN = 'live-robot-1-token-5d0c6f1e2a7b48c3a9e0f4d2b6c8a1e3';
const UPLOADER = 'robot1';
const VIEWER_TOKEN = 'live-viewer-token-7f3a1c9e5b2d4a6c8e0f1a3b5c7d9e1f';

interface Context {
  engine: S3Engine;
  postgres: PostgresEngine;
  s3: S3Client;
  tmp: TempDir;
}

const context = withEngines<Context>(
  async () => {
    const [engine, postgres] = await Promise.all([useS3(), usePostgres()]);
    return { engine, postgres, s3: createS3Client(engine), tmp: await createTempDir('replica-live') };
  },
  async ({ s3, tmp }) => {
    s3.destroy();
    await tmp.remove();
  },
);

let cluster: Cluster | undefined;
let agent: SpawnedAgent | undefined;
const streams: FleetStream[] = [];
const gates: RequestGateFront[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  agent?.kill('SIGKILL');
  await agent?.exited;
  agent = undefined;
  await cluster?.stop();
  cluster = undefined;
  await Promise.all(gates.splice(0).map((gate) => gate.close()));
});

/** Two replicas on a bucket and a database of their own. */
async function twoReplicas(purpose: string): Promise<{ cluster: Cluster; databaseUrl: string }> {
  const { engine, postgres, s3 } = context();
  const databaseUrl = await createDatabase(postgres, purpose);
  cluster = await startCluster({
    s3: engine,
    bucket: await createBucket(s3, purpose.replace(/_/g, '-')),
    databaseUrl,
    replicas: 2,
    args: ['--no-rate-limit'],
    env: { UPLOAD_SERVER_TOKENS: `${UPLOADER}=${TOKEN}`, UPLOAD_SERVER_VIEWER_TOKENS: `ops=${VIEWER_TOKEN}` },
  });
  return { cluster, databaseUrl };
}

async function watch(base: string): Promise<FleetStream> {
  const stream = await openFleetStream(base, VIEWER_TOKEN);
  streams.push(stream);
  await stream.snapshot;
  return stream;
}

/** A bag as rosbag2 leaves it: splits and the metadata.yaml that lists them. */
function writeBag(root: string, name: string, sizes: number[]): { folder: string; files: Map<string, number> } {
  const folder = path.join(root, name);
  mkdirSync(folder, { recursive: true });
  const files = new Map<string, number>();
  const names = sizes.map((size, index) => {
    const file = `${name}_${index}.mcap`;
    writeFileSync(path.join(folder, file), randomBytes(size));
    files.set(`${name}/${file}`, size);
    return file;
  });
  const listed = names.map((file) => `    - ${file}\n`).join('');
  const metadata =
    'rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: mcap\n' + `  relative_file_paths:\n${listed}`;
  writeFileSync(path.join(folder, 'metadata.yaml'), metadata);
  files.set(`${name}/metadata.yaml`, Buffer.byteLength(metadata));
  return { folder, files };
}

function uploadTo(base: string, folder: string, stateDir: string, bandwidth: string): SpawnedAgent {
  return spawnAgent([
    'upload',
    folder,
    '--server-url',
    base,
    '--token',
    TOKEN,
    '--state-dir',
    stateDir,
    '--chunk-size',
    '1MiB',
    '--bandwidth-limit',
    bandwidth,
  ]);
}

/** The upload of `file` the stream has seen in progress (receivedBytes between 0 and the size), if any. */
function inProgress(stream: FleetStream, file: string) {
  return [...stream.history.values()]
    .flat()
    .find((view) => view.path === file && view.receivedBytes > 0 && view.receivedBytes < view.size);
}

describe('the live view across replicas', () => {
  it("a page on one replica sees the other's upload move and complete, the robot's counts and the bag complete, once", {
    timeout: 10 * 60_000,
  }, async () => {
    const { tmp } = context();
    const { cluster } = await twoReplicas('live_view');
    const [uploading, other] = [cluster.replicas[0]!, cluster.replicas[1]!];
    const onOther = await watch(other.url);
    const onUploading = await watch(uploading.url);
    expect((await onOther.snapshot).uploads).toEqual([]);

    const { folder, files } = writeBag(path.join(tmp.path, 'robot-a'), 'survey', [16 * MiB + 5, 64 * 1024]);
    const total = [...files.values()].reduce((sum, size) => sum + size, 0);
    // Through replica 0 only, behind a gate that holds chunk requests from the fifth on: the upload
    // stays in progress, at a known point, until the test lets it go on (a page's view lags the
    // upload by a report and a tick, which under load can be longer than a throttled upload).
    const gate = await RequestGateFront.start(uploading.url, 4);
    gates.push(gate);
    agent = uploadTo(gate.url, folder, path.join(tmp.path, 'agent-a'), '2MiB');

    // The other replica's stream shows the upload in progress.
    const big = 'survey/survey_0.mcap';
    const first = await waitFor(() => inProgress(onOther, big), 'the upload in progress on the other replica', 120_000);
    expect(first.uploader).toBe(UPLOADER);
    expect(first.size).toBe(files.get(big));
    // A page that connects to the other replica now gets the upload in its snapshot.
    const late = await watch(other.url);
    const inSnapshot = (await late.snapshot).uploads.find((view) => view.id === first.id);
    expect(inSnapshot, JSON.stringify((await late.snapshot).uploads)).toBeDefined();
    expect(inSnapshot!.receivedBytes).toBeGreaterThan(0);
    // Let ten chunks through: the progress moves on the other replica, and the robot shows as
    // online, uploading, at a rate (the upload cannot end meanwhile).
    gate.open(10);
    await waitFor(() => {
      const moved = onOther.history.get(first.id)?.some((view) => view.receivedBytes > first.receivedBytes);
      const robot = onOther.robots.get(UPLOADER);
      return moved && robot?.online && robot.uploading > 0 && robot.rate > 0;
    }, 'the progress moving and the robot uploading on the other replica');
    gate.open(Number.POSITIVE_INFINITY);

    const exit = await agent.exited;
    expect(exit.code, `${agent.stdout}\n${agent.stderr}`).toBe(0);

    for (const [name, stream] of [
      ['other', onOther],
      ['uploading', onUploading],
    ] as const) {
      // Every file completed, the bag complete, the upload gone, the robot's counts the fleet's.
      await waitFor(
        () => [...files.keys()].every((file) => stream.completions.some((c) => c.path === file)),
        `every completion on the ${name} replica`,
      );
      const bag = await waitFor(() => {
        const view = stream.bags.get(`${UPLOADER}/survey`);
        return view?.complete ? view : undefined;
      }, `the bag complete on the ${name} replica`);
      expect(bag.arrived).toBe(2);
      await waitFor(() => stream.removed.has(first.id) && !stream.uploads.has(first.id), `the upload gone (${name})`);
      await waitFor(() => {
        const robot = stream.robots.get(UPLOADER);
        return robot?.filesToday === files.size && robot.bytesToday === total;
      }, `the robot's counts on the ${name} replica`);
    }
    // Nothing arrives twice: three more updates later, each file is listed once and counted once.
    const seen = [onOther.updates, onUploading.updates];
    await waitFor(() => onOther.updates >= seen[0]! + 3 && onUploading.updates >= seen[1]! + 3, 'three more updates');
    for (const stream of [onOther, onUploading]) {
      for (const file of files.keys()) expect(stream.completions.filter((c) => c.path === file)).toHaveLength(1);
      expect(stream.robots.get(UPLOADER)).toMatchObject({ filesToday: files.size, bytesToday: total });
    }
    expect(onOther.ended).toBeUndefined();
  });

  it("a replica killed with -9: its upload leaves the other replica's view within a bounded time", {
    timeout: 10 * 60_000,
  }, async () => {
    const { tmp } = context();
    const { cluster, databaseUrl } = await twoReplicas('live_kill');
    const [dying, survivor] = [cluster.replicas[0]!, cluster.replicas[1]!];
    const onSurvivor = await watch(survivor.url);

    const { folder } = writeBag(path.join(tmp.path, 'robot-b'), 'long', [64 * MiB]);
    // 1 MiB/s: still uploading, through the replica about to die only, when it dies.
    agent = uploadTo(dying.url, folder, path.join(tmp.path, 'agent-b'), '1MiB');
    const seen = await waitFor(
      () => inProgress(onSurvivor, 'long/long_0.mcap'),
      'the upload in progress on the survivor',
      120_000,
    );
    expect(onSurvivor.removed.has(seen.id)).toBe(false);

    const killedAt = Date.now();
    await cluster.kill(0);
    // The bound: the replica's silence window (PEER_SILENT_MS) and a tick; the deadline here is generous for a busy CI.
    await waitFor(() => onSurvivor.removed.has(seen.id), 'the upload gone from the survivor', 4 * PEER_SILENT_MS);
    const after = onSurvivor.removed.get(seen.id)! - killedAt;
    // Gone because its replica fell silent, not because it ended: the session is still open.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ state: string }>('SELECT state FROM sessions WHERE id = $1', [seen.id]);
      expect(rows[0]?.state).not.toBe('complete');
    } finally {
      await db.end();
    }
    // A page that connects now does not show it either.
    const fresh = await watch(survivor.url);
    expect((await fresh.snapshot).uploads.map((view) => view.id)).not.toContain(seen.id);
    console.log(`replica-live: upload left the survivor's view ${after} ms after the kill`);
  });
});
