import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { spawnAgent } from '../cli/support/spawn-agent.js';
import { type S3Engine, useS3, usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';
import { createBucket, createS3Client } from '../engines/s3.js';
import { type Cluster, listKeys, objectDigest, startCluster } from '../helpers/cluster.js';
import { legacyGet, legacyUploadFile } from '../helpers/legacy-client.js';
import { call } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The scale-out shape end to end: three real server processes on one Ceph bucket and one
 * PostgreSQL database, behind a load balancer that sends every request of an upload to another
 * replica than the one before; the real agent program uploads 20 files while one replica is
 * killed with -9 twice and restarted, and is itself killed once and resumed.
 */
const MiB = 1024 * 1024;
const TOKEN = 'fleet-robot-7-token-60303ae22b998861bce3b28f33eec1be';
const UPLOADER = 'robot-7';

interface Context {
  engine: S3Engine;
  s3: S3Client;
  bucket: string;
  databaseUrl: string;
  tmp: TempDir;
}

const context = withEngines<Context>(
  async () => {
    const [engine, postgres] = await Promise.all([useS3(), usePostgres()]);
    const s3 = createS3Client(engine);
    return {
      engine,
      s3,
      bucket: await createBucket(s3, 'replicas'),
      databaseUrl: await createDatabase(postgres, 'replicas'),
      tmp: await createTempDir('replicas'),
    };
  },
  async ({ s3, tmp }) => {
    s3.destroy();
    await tmp.remove();
  },
);

/**
 * 20 files, 430 MiB: one of 200 MiB, several of a few chunks (8 MiB, the agent's default), and
 * small ones that go whole in one request (up to 1 MiB), in two bags.
 */
const FILES: [string, number][] = [
  ['bag_a/bag_a_0.mcap', 200 * MiB],
  ['bag_a/bag_a_1.mcap', 64 * MiB + 17],
  ['bag_a/bag_a_2.mcap', 40 * MiB],
  ['bag_a/bag_a_3.mcap', 33 * MiB + 1],
  ['bag_a/bag_a_4.mcap', 24 * MiB],
  ['bag_a/bag_a_5.mcap', 17 * MiB - 3],
  ['bag_a/bag_a_6.mcap', 9 * MiB],
  ['bag_a/bag_a_7.mcap', 8 * MiB],
  ['bag_a/bag_a_8.mcap', 5 * MiB + 5],
  ['bag_a/bag_a_9.mcap', 3 * MiB],
  ['bag_a/metadata.yaml', 2_345],
  ['bag_b/bag_b_0.db3', 12 * MiB],
  ['bag_b/bag_b_1.db3', 2 * MiB + 1],
  ['bag_b/bag_b_2.db3', MiB + 5],
  ['bag_b/bag_b_3.db3', MiB],
  ['bag_b/bag_b_4.db3', 700 * 1024],
  ['bag_b/bag_b_5.db3', 64 * 1024],
  ['bag_b/bag_b_6.db3', 1_000],
  ['bag_b/bag_b_7.db3', 1],
  ['bag_b/metadata.yaml', 1_234],
];

/** Successful chunk PUTs the proxy passed on so far. */
function chunksStored(cluster: Cluster): number {
  return cluster.proxy.log.filter(
    (entry) => entry.method === 'PUT' && /\/chunks\//.test(entry.url) && entry.status === 200,
  ).length;
}

describe('three server replicas on one bucket and one database', () => {
  it('the agent uploads 20 files through a balancer while a replica is killed -9 twice: all stored, indexed once', {
    timeout: 15 * 60_000,
  }, async () => {
    const { engine, s3, bucket, databaseUrl, tmp } = context();
    const root = path.join(tmp.path, 'recordings');
    const expected = new Map<string, string>();
    for (const [name, size] of FILES) expected.set(name, await writeRandomFile(path.join(root, name), size));

    const cluster = await startCluster({
      s3: engine,
      bucket,
      databaseUrl,
      replicas: 3,
      args: ['--no-rate-limit'],
      env: { UPLOAD_SERVER_TOKENS: `${UPLOADER}=${TOKEN}` },
    });
    try {
      const agentArgs = [
        'upload',
        path.join(root, 'bag_a'),
        path.join(root, 'bag_b'),
        '--server',
        cluster.proxy.url,
        '--token',
        TOKEN,
        '--state-dir',
        path.join(tmp.path, 'agent-state'),
        '--retry-delay',
        '200ms',
        '--retry-max-delay',
        '2s',
      ];
      const totalChunks = FILES.reduce((sum, [, size]) => sum + (size > MiB ? Math.ceil(size / (8 * MiB)) : 0), 0);

      // Run 1: replica 0 is killed with -9 while chunks flow and started again; then the agent is killed.
      const first = spawnAgent(agentArgs);
      await waitFor(() => chunksStored(cluster) >= 6, 'six chunks stored', 120_000);
      await cluster.kill(0);
      await cluster.restart(0);
      await waitFor(() => chunksStored(cluster) >= Math.floor(totalChunks / 2), 'half of the chunks stored', 300_000);
      first.kill('SIGKILL');
      await first.exited;
      const firstRunEnds = cluster.proxy.log.length;

      // Run 2: the same command resumes; replica 0 is killed a second time and started again.
      const second = spawnAgent(agentArgs);
      await waitFor(() => chunksStored(cluster) >= Math.floor(totalChunks / 2) + 4, 'four more chunks', 300_000);
      await cluster.kill(0);
      await cluster.restart(0);
      const { code } = await second.exited;
      expect(code, `${second.stdout}\n${second.stderr}\n${cluster.output().slice(-5000)}`).toBe(0);
      expect(second.stdout).toContain(`${FILES.length} of ${FILES.length} file(s) verified by the server`);

      // Every request of an upload session went to another replica than the one before it, in the
      // order the balancer chose them (with several chunks in flight answers end in another order;
      // a connection a killed replica refused, or a request the agent gave up on, is still a choice).
      const bySession = new Map<string, number[]>();
      for (const { session, replica } of cluster.proxy.choices)
        bySession.set(session, [...(bySession.get(session) ?? []), replica]);
      expect(bySession.size).toBeGreaterThanOrEqual(FILES.filter(([, size]) => size > MiB).length);
      for (const [session, replicas] of bySession)
        for (let i = 1; i < replicas.length; i += 1) expect(replicas[i], session).not.toBe(replicas[i - 1]);
      // Resumed: sessions of the first run got chunks in the second.
      const secondRunSessions = new Set(
        cluster.proxy.log
          .slice(firstRunEnds)
          .flatMap((entry) => /^\/v1\/sessions\/([^/]+)\/chunks/.exec(entry.url)?.[1] ?? []),
      );
      const firstRunSessions = new Set(
        cluster.proxy.log
          .slice(0, firstRunEnds)
          .flatMap((entry) => /^\/v1\/sessions\/([^/]+)\/chunks/.exec(entry.url)?.[1] ?? []),
      );
      expect([...secondRunSessions].some((session) => firstRunSessions.has(session))).toBe(true);

      // Every object in the bucket is the file, once; the index lists each file once, with its digest.
      const keys = (await listKeys(s3, bucket, 'completed/')).sort();
      expect(keys).toEqual([...expected.keys()].map((name) => `completed/${UPLOADER}/${name}`).sort());
      for (const [name, sha256] of expected) {
        const stored = await objectDigest(s3, bucket, `completed/${UPLOADER}/${name}`);
        expect(stored.sha256, name).toBe(sha256);
      }
      const db = new pg.Client({ connectionString: databaseUrl });
      await db.connect();
      try {
        const { rows } = await db.query<{ path: string; sha256: string; n: string }>(
          'SELECT path, min(sha256) AS sha256, count(*) AS n FROM files WHERE uploader = $1 GROUP BY path',
          [UPLOADER],
        );
        expect(rows).toHaveLength(FILES.length);
        for (const row of rows) {
          expect(Number(row.n), row.path).toBe(1);
          expect(row.sha256, row.path).toBe(expected.get(row.path));
        }
        // One session per file that went through sessions, whatever replica created or resumed it.
        const sessions = await db.query<{ path: string; n: string }>(
          `SELECT path, count(*) AS n FROM sessions WHERE uploader = $1 AND api = 'native' GROUP BY path`,
          [UPLOADER],
        );
        for (const row of sessions.rows) expect(Number(row.n), row.path).toBe(1);
      } finally {
        await db.end();
      }

      // GET /v1/files/... answers the same from every replica.
      for (const [name] of FILES.slice(0, 5)) {
        const answers = await Promise.all(
          cluster.replicas.map((replica) => call(replica!.url, 'GET', routes.file(name), undefined, { token: TOKEN })),
        );
        for (const answer of answers) {
          expect(answer.status).toBe(200);
          expect(answer.json).toEqual(answers[0]!.json);
        }
        expect(answers[0]!.json).toMatchObject({ path: name, sha256: expected.get(name), state: 'complete' });
      }
    } finally {
      await cluster.stop();
    }
  });

  it('the legacy API across replicas: spread init, chunks, finalize; a gzip copy at rest; listed by each', {
    timeout: 5 * 60_000,
  }, async () => {
    const { engine, s3, bucket, databaseUrl, tmp } = context();
    const cluster = await startCluster({
      s3: engine,
      bucket,
      databaseUrl,
      replicas: 3,
      args: ['--no-rate-limit', '--compression-wait', '60s'],
      env: { UPLOAD_SERVER_TOKENS: `legacy-robot=${TOKEN}` },
    });
    try {
      // Compressible text (a log), 11 MiB: at least the 10 MiB threshold, so a gzip copy is kept.
      const text = path.join(tmp.path, 'session.log');
      const obstacle = randomBytes(4).toString('hex');
      const line = `${new Date(0).toISOString()} INFO planner: replanning around obstacle ${obstacle}\n`;
      await writeFile(text, line.repeat(Math.ceil((11 * MiB) / line.length)));
      const binary = path.join(tmp.path, 'run.bag');
      await writeRandomFile(binary, 3 * MiB + 3);

      const logUpload = await legacyUploadFile(cluster.proxy.url, text, 'legacy/session.log', {
        chunks: 23,
        token: TOKEN,
        compression: true,
        order: (indexes) => [...indexes.slice(5), ...indexes.slice(0, 5)], // out of order, too
      });
      expect(logUpload.finalize.status, JSON.stringify(logUpload.finalize.json)).toBe(200);
      expect(logUpload.finalize.json).toMatchObject({
        file_path: 'completed/legacy-robot/legacy/session.log',
        checksum: logUpload.md5,
        compressed_path: 'compressed/legacy-robot/legacy/session.log.gz',
        compression_applied: true,
      });
      const binUpload = await legacyUploadFile(cluster.proxy.url, binary, 'legacy/run.bag', {
        chunks: 4,
        token: TOKEN,
      });
      expect(binUpload.finalize.status, JSON.stringify(binUpload.finalize.json)).toBe(200);
      // The same name with other bytes: stored under a unique name, never over the first.
      const other = path.join(tmp.path, 'run-other.bag');
      await writeRandomFile(other, MiB);
      const again = await legacyUploadFile(cluster.proxy.url, other, 'legacy/run.bag', { chunks: 2, token: TOKEN });
      expect(again.finalize.json).toMatchObject({ file_path: 'completed/legacy-robot/legacy/run.1.bag' });

      // init, chunks and finalize were spread over the replicas.
      const used = new Set(
        cluster.proxy.log.filter((entry) => entry.url.startsWith('/upload/')).map((entry) => entry.replica),
      );
      expect(used).toEqual(new Set([0, 1, 2]));

      expect((await objectDigest(s3, bucket, 'completed/legacy-robot/legacy/session.log')).sha256).toBe(
        await sha256OfFile(text),
      );
      expect((await objectDigest(s3, bucket, 'completed/legacy-robot/legacy/run.bag')).sha256).toBe(
        await sha256OfFile(binary),
      );
      expect((await objectDigest(s3, bucket, 'completed/legacy-robot/legacy/run.1.bag')).sha256).toBe(
        await sha256OfFile(other),
      );
      const gz = await objectDigest(s3, bucket, 'compressed/legacy-robot/legacy/session.log.gz');
      expect(gz.size).toBeLessThan(MiB);

      // The status of an upload and the listing are the same from every replica.
      const uploadId = logUpload.init.json.upload_id as string;
      for (const replica of cluster.replicas) {
        const status = await legacyGet(replica!.url, `/upload/status/${uploadId}`, TOKEN);
        expect(status.json).toMatchObject({
          state: 'complete',
          file_path: 'completed/legacy-robot/legacy/session.log',
        });
        const listing = await legacyGet(replica!.url, '/uploads', TOKEN);
        expect((listing.json.uploads as { filename: string }[]).map((upload) => upload.filename).sort()).toEqual([
          'legacy/run.1.bag',
          'legacy/run.bag',
          'legacy/session.log',
        ]);
      }
    } finally {
      await cluster.stop();
    }
  });
});
