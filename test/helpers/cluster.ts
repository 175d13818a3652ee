import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { S3Engine } from '../engines/engines.js';
import { startRoundRobinProxy, type RoundRobinProxy } from './round-robin-proxy.js';
import { spawnServer, type ServerProcess } from './spawn-server.js';

export interface ClusterOptions {
  s3: S3Engine;
  bucket: string;
  databaseUrl: string;
  replicas: number;
  /** More server flags (rate limits, tokens, ...). */
  args?: string[];
  env?: Record<string, string>;
}

/** Server replicas (the real program, each its own process) on one bucket and one database, behind a proxy. */
export interface Cluster {
  readonly proxy: RoundRobinProxy;
  /** The running replicas; undefined while one is down. */
  readonly replicas: (ServerProcess | undefined)[];
  /** Kills replica `index` with SIGKILL (a crash), marks it down at the proxy and waits for its exit. */
  kill(index: number): Promise<void>;
  /** Starts replica `index` again (a new port) and puts it back behind the proxy. */
  restart(index: number): Promise<void>;
  /** Every replica's log output so far. */
  output(): string;
  stop(): Promise<void>;
}

/** The flags and environment of a replica on this bucket and database. */
export function replicaCommand(options: ClusterOptions): { args: string[]; env: Record<string, string> } {
  const { s3 } = options;
  return {
    args: [
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--storage',
      's3',
      '--s3-bucket',
      options.bucket,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-region',
      s3.region,
      '--s3-force-path-style',
      '--database-url',
      options.databaseUrl,
      ...(options.args ?? []),
    ],
    env: {
      UPLOAD_SERVER_S3_ACCESS_KEY_ID: s3.accessKeyId,
      UPLOAD_SERVER_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...options.env,
    },
  };
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { args, env } = replicaCommand(options);
  const start = (): Promise<ServerProcess> => spawnServer(args, { env, timeoutMs: 60_000 });
  const replicas: (ServerProcess | undefined)[] = await Promise.all(
    Array.from({ length: options.replicas }, () => start()),
  );
  const earlier: string[] = [];
  const proxy = await startRoundRobinProxy(replicas.map((replica) => replica?.url));
  return {
    proxy,
    replicas,
    kill: async (index) => {
      const replica = replicas[index];
      if (!replica) return;
      proxy.setReplica(index, undefined);
      replicas[index] = undefined;
      await replica.stop('SIGKILL');
      earlier.push(replica.stdout(), replica.stderr());
    },
    restart: async (index) => {
      const replica = await start();
      replicas[index] = replica;
      proxy.setReplica(index, replica.url);
    },
    output: () =>
      [...earlier, ...replicas.flatMap((replica) => [replica?.stdout() ?? '', replica?.stderr() ?? ''])].join('\n'),
    stop: async () => {
      await proxy.close();
      await Promise.all(replicas.map((replica) => replica?.stop()));
    },
  };
}

/** The SHA-256 and size of an object, streamed. */
export async function objectDigest(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ sha256: string; size: number }> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of Body as Readable) {
    hash.update(piece as Buffer);
    size += (piece as Buffer).byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Every key under `prefix`. */
export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** The keys of multipart uploads still open in the bucket. */
export async function openMultipartUploads(s3: S3Client, bucket: string): Promise<string[]> {
  const answer = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (answer.Uploads ?? []).map((upload) => upload.Key!);
}
