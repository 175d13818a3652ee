import { randomBytes } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { startEngine, stopEngine } from '../../test/engines/engine-scripts.js';
import type { PostgresEngine, S3Engine } from '../../test/engines/engines.js';
import { createS3Client } from '../../test/engines/s3.js';

/** Ceph's gateway and PostgreSQL, started by the project's scripts in a folder of the benchmark. */
export interface BenchEngines {
  s3: S3Engine;
  postgres: PostgresEngine;
  /** A new bucket and a new database, for one measurement. */
  fresh(purpose: string): Promise<{ bucket: string; databaseUrl: string }>;
  stop(): Promise<void>;
}

export async function startEngines(dir: string): Promise<BenchEngines> {
  await mkdir(dir, { recursive: true });
  // PostgreSQL runs as its own user and must reach its folder through the benchmark's (mkdtemp: 0700).
  await chmod(path.dirname(dir), 0o711);
  await chmod(dir, 0o711);
  const [cephEnv, pgEnv] = await Promise.all([
    startEngine('ceph-rgw', path.join(dir, 'ceph')),
    startEngine('postgres', path.join(dir, 'postgres')),
  ]);
  const s3: S3Engine = {
    endpoint: cephEnv.S3_ENDPOINT!,
    region: cephEnv.S3_REGION!,
    accessKeyId: cephEnv.S3_ACCESS_KEY_ID!,
    secretAccessKey: cephEnv.S3_SECRET_ACCESS_KEY!,
    env: cephEnv,
  };
  const postgres: PostgresEngine = { databaseUrl: pgEnv.DATABASE_URL!, env: pgEnv };
  const client = createS3Client(s3);
  return {
    s3,
    postgres,
    fresh: async (purpose) => {
      const suffix = randomBytes(4).toString('hex');
      const bucket = `${purpose}-${suffix}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const name = `${purpose.replace(/-/g, '_')}_${suffix}`;
      const admin = new pg.Client({ connectionString: postgres.databaseUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      const url = new URL(postgres.databaseUrl);
      url.pathname = `/${name}`;
      return { bucket, databaseUrl: url.toString() };
    },
    stop: async () => {
      client.destroy();
      await Promise.allSettled([
        stopEngine('ceph-rgw', path.join(dir, 'ceph'), true),
        stopEngine('postgres', path.join(dir, 'postgres'), true),
      ]);
    },
  };
}
