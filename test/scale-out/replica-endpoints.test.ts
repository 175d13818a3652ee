import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { MAX_WHOLE_FILE_SIZE, headers as protocolHeaders, routes } from '../../common/protocol/native-protocol.js';
import { type PostgresEngine, type S3Engine, useS3, usePostgres, withEngines } from '../engines/engines.js';
import { createDatabase } from '../engines/postgres.js';
import { createBucket, createS3Client } from '../engines/s3.js';
import { listKeys, openMultipartUploads, replicaCommand, startCluster } from '../helpers/cluster.js';
import { call, createSession, putChunk, readChunk } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { runServerProgram, spawnServer } from '../helpers/spawn-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/** Rate limits and readiness of replicas: one budget for all of them; /ready follows the database. */
interface Context {
  engine: S3Engine;
  postgres: PostgresEngine;
  bucket: string;
}

const context = withEngines<Context>(async () => {
  const [engine, postgres] = await Promise.all([useS3(), usePostgres()]);
  const s3 = createS3Client(engine);
  try {
    return { engine, postgres, bucket: await createBucket(s3, 'endpoints') };
  } finally {
    s3.destroy();
  }
});

describe('replica endpoints', () => {
  it('the byte-rate limit is one budget for all replicas, not one per replica', { timeout: 180_000 }, async () => {
    const { engine, postgres, bucket } = context();
    // 1 MiB/s averaged over a minute: 60 MiB per uploader per minute, for all replicas together.
    const cluster = await startCluster({
      s3: engine,
      bucket,
      databaseUrl: await createDatabase(postgres, 'limits'),
      replicas: 3,
      args: ['--rate-limit-upload-rate', '1'],
      env: {
        UPLOAD_SERVER_TOKENS:
          'robot-1=limit-token-1-9f86d081884c7d659a2feaa0c55ad015,' +
          'robot-2=limit-token-2-a3bf4f1b2b0b822cd15d6c15b0f00a08',
      },
    });
    const put = (name: string, token: string, data: Buffer, base = cluster.proxy.url) =>
      call(base, 'PUT', routes.file(name), data, {
        token,
        headers: {
          'content-type': 'application/octet-stream',
          [protocolHeaders.contentSha256]: createHash('sha256').update(data).digest('hex'),
        },
      });
    try {
      // The largest whole-file PUT (8 MiB): 7 of them fit in the minute's 60 MiB, the 8th does not,
      // whichever replica answers (each replica alone has seen at most 3).
      const data = randomBytes(MAX_WHOLE_FILE_SIZE);
      const statuses: number[] = [];
      for (let i = 0; i < 8; i += 1)
        statuses.push((await put(`rate/${i}.bin`, 'limit-token-1-9f86d081884c7d659a2feaa0c55ad015', data)).status);
      expect(
        statuses.slice(0, 7).every((status) => status === 200 || status === 201),
        `${statuses}`,
      ).toBe(true);
      expect(statuses[7]).toBe(429);
      expect(new Set(cluster.proxy.log.map((entry) => entry.replica))).toEqual(new Set([0, 1, 2]));
      const refused = await put(
        'rate/3.bin',
        'limit-token-1-9f86d081884c7d659a2feaa0c55ad015',
        data,
        cluster.replicas[0]!.url,
      );
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(JSON.stringify(refused.json)).toContain('rate-limit-upload-rate');
      // Another uploader has its own budget.
      expect([200, 201]).toContain(
        (await put('rate/0.bin', 'limit-token-2-a3bf4f1b2b0b822cd15d6c15b0f00a08', data)).status,
      );
    } finally {
      await cluster.stop();
    }
  });

  it('failed authentications are one budget for all replicas: past it, any replica refuses the address', {
    timeout: 180_000,
  }, async () => {
    const { engine, postgres, bucket } = context();
    const cluster = await startCluster({
      s3: engine,
      bucket,
      databaseUrl: await createDatabase(postgres, 'auth-failures'),
      replicas: 3,
      args: ['--rate-limit-auth-failures', '4'],
      env: { UPLOAD_SERVER_TOKENS: 'robot-1=auth-limit-token-1-9f86d081884c7d659a2feaa0c55ad015' },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1)
        statuses.push(
          (await call(cluster.proxy.url, 'GET', routes.file('x.bin'), undefined, { token: 'wrong-token-0123456789' }))
            .status,
        );
      // Replicas counting alone would each have seen at most 2 failures and answered 401 to all.
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
      expect(new Set(cluster.proxy.log.map((entry) => entry.replica))).toEqual(new Set([0, 1, 2]));
      // Past the limit, every replica turns the address away before looking at its credentials.
      for (const replica of cluster.replicas) {
        const answer = await call(replica!.url, 'GET', routes.file('x.bin'), undefined, {
          token: 'auth-limit-token-1-9f86d081884c7d659a2feaa0c55ad015',
        });
        expect(answer.status).toBe(429);
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    } finally {
      await cluster.stop();
    }
  });

  it('/ready checks the bucket and the database: 503 once the database is gone, /health still 200', {
    timeout: 180_000,
  }, async () => {
    const { engine, postgres, bucket } = context();
    const databaseUrl = await createDatabase(postgres, 'ready');
    const cluster = await startCluster({ s3: engine, bucket, databaseUrl, replicas: 1 });
    try {
      const url = cluster.replicas[0]!.url;
      expect((await call(url, 'GET', '/ready')).json).toEqual({
        status: 'ready',
        checks: { storage: 'ok', database: 'ok' },
      });
      const admin = new pg.Client({ connectionString: postgres.databaseUrl });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE ${new URL(databaseUrl).pathname.slice(1)} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
      const notReady = await waitFor(async () => {
        const answer = await call(url, 'GET', '/ready');
        return answer.status === 503 ? answer : undefined;
      }, '/ready to answer 503').catch((error: Error) => {
        throw new Error(`${error.message}\nthe replica said:\n${cluster.output().slice(-4000)}`);
      });
      expect(notReady.json).toEqual({ status: 'not ready', checks: { storage: 'ok', database: 'failing' } });
      expect((await call(url, 'GET', '/health')).status).toBe(200);
    } finally {
      await cluster.stop();
    }
  });

  it("keys from a credentials file or from the AWS SDK's environment reach the bucket; wrong keys stop the start", {
    timeout: 180_000,
  }, async () => {
    const { engine, postgres, bucket } = context();
    const databaseUrl = await createDatabase(postgres, 'keys');
    const { args } = replicaCommand({ s3: engine, bucket, databaseUrl, replicas: 1 });
    const quiet = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const tmp = await createTempDir('replica-keys');
    try {
      const keys = path.join(tmp.path, 's3-keys.yaml');
      await writeFile(keys, `accessKeyId: ${engine.accessKeyId}\nsecretAccessKey: ${engine.secretAccessKey}\n`, {
        mode: 0o600,
      });
      const environments: Record<string, string>[] = [
        { ...quiet, AWS_ACCESS_KEY_ID: engine.accessKeyId, AWS_SECRET_ACCESS_KEY: engine.secretAccessKey },
        quiet,
      ];
      for (const [n, env] of environments.entries()) {
        const server = await spawnServer(n === 0 ? args : [...args, '--s3-credentials-file', keys], {
          env,
          timeoutMs: 60_000,
        });
        try {
          expect((await call(server.url, 'GET', '/ready')).json).toEqual({
            status: 'ready',
            checks: { storage: 'ok', database: 'ok' },
          });
        } finally {
          expect(await server.stop()).toBe(0);
        }
      }
      const wrongSecret = 'not-the-secret-0123456789';
      const refused = await runServerProgram(
        args,
        { ...quiet, AWS_ACCESS_KEY_ID: engine.accessKeyId, AWS_SECRET_ACCESS_KEY: wrongSecret },
        60_000,
      );
      expect(refused.code, refused.stderr).toBe(73);
      expect(refused.stderr).toContain(`Cannot use the bucket ${bucket}: the access key may not use it`);
      expect(refused.stderr + refused.stdout).not.toContain(wrongSecret);
    } finally {
      await tmp.remove();
    }
  });

  it('an abandoned upload expires once, in one replica: its multipart upload aborted, its session gone', {
    timeout: 180_000,
  }, async () => {
    const { engine, postgres, bucket } = context();
    const databaseUrl = await createDatabase(postgres, 'expiry');
    const s3 = createS3Client(engine);
    const tmp = await createTempDir('replica-expiry');
    // Every replica sweeps five times a second; the advisory lock lets one of them end the session.
    const cluster = await startCluster({
      s3: engine,
      bucket,
      databaseUrl,
      replicas: 3,
      args: ['--no-rate-limit', '--cleanup-interval', '0.2'],
    });
    try {
      const file = path.join(tmp.path, 'abandoned.bin');
      await writeRandomFile(file, 12 * 1024 * 1024);
      const created = await createSession(cluster.proxy.url, file, { path: 'expiry/abandoned.bin' });
      expect(created.status).toBe(201);
      const { id, chunkSize, size } = created.json as { id: string; chunkSize: number; size: number };
      expect((await putChunk(cluster.proxy.url, id, 0, await readChunk(file, 0, chunkSize, size))).status).toBe(200);
      const key = 'completed/anonymous/expiry/abandoned.bin';
      expect(await openMultipartUploads(s3, bucket)).toContain(key);
      // The robot goes away: its session's expiry (7 days) is moved into the past, as time would.
      const db = new pg.Client({ connectionString: databaseUrl });
      await db.connect();
      try {
        await db.query('UPDATE sessions SET expires_at = $1 WHERE id = $2', [Date.now() - 1000, id]);
      } finally {
        await db.end();
      }
      await waitFor(
        async () => !(await openMultipartUploads(s3, bucket)).includes(key),
        'the multipart upload to be aborted',
        60_000,
      );
      await waitFor(() => cluster.output().includes('"event":"session_expired"'), 'the expiry log line');
      const expired = cluster
        .output()
        .split('\n')
        .filter((line) => line.includes('"event":"session_expired"'));
      expect(expired).toHaveLength(1);
      expect(expired[0]).toContain(id);
      const answer = await call(cluster.proxy.url, 'GET', routes.session(id));
      expect(answer.status).toBe(404);
      expect(await listKeys(s3, bucket, 'completed/anonymous/expiry/')).toEqual([]);
    } finally {
      await cluster.stop();
      s3.destroy();
      await tmp.remove();
    }
  });
});
