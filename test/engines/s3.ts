import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { S3Engine } from './engines.js';

/**
 * An S3 client set up the way Ceph's gateway needs it: path-style addressing (no wildcard DNS
 * on 127.0.0.1), and checksums only where an operation requires them. With the SDK's default
 * ('WHEN_SUPPORTED') a streamed PutObject is sent with aws-chunked encoding, which Ceph 16.2
 * answers with 411 Length Required; its gateway neither verifies nor returns the additional
 * checksums anyway.
 */
export function createS3Client(engine: S3Engine, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: engine.endpoint,
    region: engine.region,
    credentials: { accessKeyId: engine.accessKeyId, secretAccessKey: engine.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
}

/** A new, empty bucket of its own for the calling test file (the gateway is shared by the run). */
export async function createBucket(s3: S3Client, purpose: string): Promise<string> {
  const bucket = `${purpose}-${randomBytes(4).toString('hex')}`.toLowerCase();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}
