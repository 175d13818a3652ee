import { S3Client } from '@aws-sdk/client-s3';

/** Where the bucket is and how to reach it (server options s3*, resolved by the composition root). */
export interface S3Location {
  bucket: string;
  region: string;
  /** Unset: AWS's own endpoint for the region. */
  endpoint: string | undefined;
  /** Path-style addressing (`endpoint/bucket/key`), which Ceph and MinIO need on a bare address. */
  forcePathStyle: boolean;
  /** Unset: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles). */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/**
 * The S3 client of the storage backend. Checksums only where an operation requires them: with
 * the SDK's default ('WHEN_SUPPORTED') a streamed PutObject or UploadPart is sent with
 * aws-chunked encoding, which Ceph 16 answers 411, and Ceph neither verifies nor returns the
 * additional checksums; the server's own CRC-32 and SHA-256 are the integrity guarantee. A
 * request that connects in no more than 10 s and then moves no bytes for 2 minutes fails (and
 * the chunk request that caused it with it), instead of hanging on a stuck gateway.
 */
export function createS3Client(location: S3Location, note: (message: string) => void = () => {}): S3Client {
  // The SDK writes some warnings (an aborted streamed request) to the console unless given a logger.
  const logger = { trace: () => {}, debug: () => {}, info: () => {}, warn: note, error: note };
  return new S3Client({
    logger,
    region: location.region,
    ...(location.endpoint ? { endpoint: location.endpoint } : {}),
    forcePathStyle: location.forcePathStyle,
    ...(location.credentials ? { credentials: location.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: 10_000,
      socketTimeout: 120_000,
      httpAgent: { keepAlive: true, maxSockets: 200 },
    },
    maxAttempts: 3,
  });
}

/** True for the answers S3 and Ceph give when a key or an upload is not there. */
export function isS3NotFound(error: unknown): boolean {
  const failure = error as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return (
    failure?.name === 'NoSuchKey' ||
    failure?.name === 'NoSuchUpload' ||
    failure?.name === 'NotFound' ||
    failure?.$metadata?.httpStatusCode === 404
  );
}
