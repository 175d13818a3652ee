import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { describe, expect, it } from 'vitest';
import { writeRandomFile } from '../helpers/random-file.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { useS3, withEngines, type S3Engine } from './engines.js';
import { createBucket, createS3Client } from './s3.js';

/**
 * What the S3 storage backend relies on in Ceph's RADOS Gateway (Debian's 16.2), started by
 * scripts/engines/ceph-rgw.sh, and, in the last block, what it must not rely on there.
 */
const MiB = 1024 * 1024;

interface Context {
  engine: S3Engine;
  s3: S3Client;
  bucket: string;
  tmp: TempDir;
}

const context = withEngines<Context>(
  async () => {
    const engine = await useS3();
    const s3 = createS3Client(engine);
    return { engine, s3, bucket: await createBucket(s3, 'engine-smoke'), tmp: await createTempDir('s3-smoke') };
  },
  async ({ s3, tmp }) => {
    s3.destroy();
    await tmp.remove();
  },
);

/** A part of `file` streamed from disk, as the backend sends a chunk. */
function partOf(file: string, start: number, length: number): { Body: Readable; ContentLength: number } {
  return { Body: createReadStream(file, { start, end: start + length - 1 }), ContentLength: length };
}

async function md5OfRange(file: string, start: number, length: number): Promise<Buffer> {
  const hash = createHash('md5');
  for await (const piece of createReadStream(file, { start, end: start + length - 1 })) hash.update(piece as Buffer);
  return hash.digest();
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of body as Readable) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

async function sha256OfBody(body: unknown): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of body as Readable) hash.update(piece as Buffer);
  return hash.digest('hex');
}

async function statusOf(promise: Promise<unknown>): Promise<{ status: number | undefined; name: string }> {
  try {
    await promise;
    return { status: 200, name: 'ok' };
  } catch (error) {
    const failure = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return { status: failure.$metadata?.httpStatusCode, name: failure.name };
  }
}

describe('Ceph RADOS Gateway: what the S3 backend relies on', () => {
  it('CreateBucket makes an empty bucket', async () => {
    const { s3, bucket } = context();
    const head = await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    expect(head.$metadata.httpStatusCode).toBe(200);
    const listing = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listing.KeyCount).toBe(0);
  });

  it('a multipart upload streamed from a file: parts listed, no key before Complete, identical after', async () => {
    const { s3, bucket, tmp } = context();
    const file = path.join(tmp.path, 'split_0.mcap');
    const sizes = [5 * MiB, 5 * MiB, MiB + 7]; // S3's 5 MiB minimum, except for the last part
    const total = sizes.reduce((sum, size) => sum + size, 0);
    const sha256 = await writeRandomFile(file, total);
    const key = 'robot-1/bag/split_0.mcap';

    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    expect(UploadId).toMatch(/\S/);
    const partMd5s: Buffer[] = [];
    for (let index = 0, start = 0; index < sizes.length; start += sizes[index]!, index += 1) {
      const answer = await s3.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          PartNumber: index + 1,
          ...partOf(file, start, sizes[index]!),
        }),
      );
      partMd5s.push(await md5OfRange(file, start, sizes[index]!));
      expect(answer.ETag).toBe(`"${partMd5s[index]!.toString('hex')}"`);
    }

    const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
    expect(parts.Parts?.map((part) => [part.PartNumber, part.Size, part.ETag])).toEqual(
      sizes.map((size, index) => [index + 1, size, `"${partMd5s[index]!.toString('hex')}"`]),
    );
    expect(await statusOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).toEqual({
      status: 404,
      name: 'NotFound',
    });
    expect((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'robot-1/' }))).KeyCount).toBe(0);

    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: parts.Parts!.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
      }),
    );
    // Ceph 16.2 answers Complete with an empty ETag: the backend takes it from HeadObject.
    expect(completed.ETag).toBe('');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(total);
    expect(head.ETag).toBe(`"${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${sizes.length}"`);

    const whole = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await sha256OfBody(whole.Body)).toBe(sha256);

    // A range across the boundary of parts 1 and 2, as a resumed read of a stored file asks.
    const start = 5 * MiB - 10;
    const ranged = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${start + 19}` }),
    );
    expect(ranged.$metadata.httpStatusCode).toBe(206);
    expect(ranged.ContentRange).toBe(`bytes ${start}-${start + 19}/${total}`);
    const expected = await bodyBytes(createReadStream(file, { start, end: start + 19 }));
    expect((await bodyBytes(ranged.Body)).equals(expected)).toBe(true);
  });

  it('AbortMultipartUpload discards the upload and its parts; nothing appears under the key', async () => {
    const { s3, bucket, tmp } = context();
    const file = path.join(tmp.path, 'aborted.db3');
    await writeRandomFile(file, 5 * MiB);
    const key = 'robot-1/bag/aborted.db3';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, ...partOf(file, 0, 5 * MiB) }),
    );
    const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
    expect(listed.Uploads?.map((upload) => upload.UploadId)).toEqual([UploadId]);

    const aborted = await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
    expect(aborted.$metadata.httpStatusCode).toBe(204);

    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }))).Uploads ?? []).toEqual([]);
    // Ceph answers ListParts of an aborted upload with NoSuchKey (AWS: NoSuchUpload), and a
    // second abort with NoSuchUpload: "upload gone" must accept both.
    expect(await statusOf(s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId })))).toEqual({
      status: 404,
      name: 'NoSuchKey',
    });
    expect(await statusOf(s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })))).toEqual({
      status: 404,
      name: 'NoSuchUpload',
    });
    expect(await statusOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).toEqual({
      status: 404,
      name: 'NotFound',
    });
  });

  it('PutObject with If-None-Match: * refuses an existing key with 412 and keeps the first body', async () => {
    const { s3, bucket } = context();
    const key = 'robot-1/bag/metadata.yaml';
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'first', IfNoneMatch: '*' }));
    expect(first.$metadata.httpStatusCode).toBe(200);
    expect(
      await statusOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'second', IfNoneMatch: '*' }))),
    ).toEqual({
      status: 412,
      name: 'PreconditionFailed',
    });
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect((await bodyBytes(stored.Body)).toString()).toBe('first');
  });

  it('a PutObject streamed from a file with a known ContentLength stores it whole', async () => {
    const { s3, bucket, tmp } = context();
    const file = path.join(tmp.path, 'small.mcap');
    const size = 3 * MiB + 5;
    const sha256 = await writeRandomFile(file, size);
    const key = 'robot-1/bag/small.mcap';
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, ...partOf(file, 0, size) }));
    expect(put.ETag).toBe(`"${(await md5OfRange(file, 0, size)).toString('hex')}"`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(size);
    expect(await sha256OfBody((await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toBe(sha256);
  });

  it('lib-storage stores a stream of unknown length (a compressed copy) in 5 MiB parts', async () => {
    const { s3, bucket, tmp } = context();
    const file = path.join(tmp.path, 'to-compress.db3');
    await writeRandomFile(file, 6 * MiB);
    const compressed = createHash('sha256');
    const body = createReadStream(file)
      .pipe(createGzip({ level: 1 }))
      .pipe(
        new Transform({
          transform(piece: Buffer, _encoding, done) {
            compressed.update(piece);
            done(null, piece);
          },
        }),
      );
    const key = 'robot-1/bag/to-compress.db3.gz';
    // queueSize 1: one 5 MiB part in memory at a time, whatever the file's size.
    await new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: body },
      partSize: 5 * MiB,
      queueSize: 1,
    }).done();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ETag).toMatch(/-2"$/); // random bytes do not shrink: two parts
    expect(await sha256OfBody((await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toBe(
      compressed.digest('hex'),
    );
  });
});

describe('Ceph RADOS Gateway: what the S3 backend must not rely on', () => {
  it('parts under 5 MiB but the last: Complete fails with EntityTooSmall, the upload stays until aborted', async () => {
    const { s3, bucket } = context();
    const key = 'robot-1/bag/too-small.mcap';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const parts = [];
    for (const [index, body] of ['one MiB would do', 'the last'].entries()) {
      const { ETag } = await s3.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: body }),
      );
      parts.push({ PartNumber: index + 1, ETag });
    }
    const complete = s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
    );
    expect(await statusOf(complete)).toEqual({ status: 400, name: 'EntityTooSmall' });
    expect((await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }))).Parts).toHaveLength(2);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
  });

  it('If-None-Match on CompleteMultipartUpload is ignored: it replaces an existing object', async () => {
    const { s3, bucket } = context();
    const key = 'robot-1/bag/replaced.yaml';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'original' }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const { ETag } = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'replacement' }),
    );
    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        IfNoneMatch: '*',
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] },
      }),
    );
    expect(completed.$metadata.httpStatusCode).toBe(200);
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect((await bodyBytes(stored.Body)).toString()).toBe('replacement');
  });

  it('additional checksums are accepted without being verified, and never returned', async () => {
    const { s3, bucket } = context();
    const key = 'robot-1/bag/wrong-checksum.yaml';
    const wrong = Buffer.alloc(32).toString('base64');
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'hello', ChecksumSHA256: wrong }));
    expect(put.$metadata.httpStatusCode).toBe(200);
    expect(put.ChecksumSHA256).toBeUndefined();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    expect(head.ContentLength).toBe(5);
    expect(head.ChecksumSHA256).toBeUndefined();
  });

  it("the SDK's default checksum mode makes a streamed PutObject fail with 411 (hence WHEN_REQUIRED)", async () => {
    const { engine, bucket, tmp } = context();
    const file = path.join(tmp.path, 'default-checksums.mcap');
    await writeRandomFile(file, MiB);
    const defaults = createS3Client(engine, {
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      responseChecksumValidation: 'WHEN_SUPPORTED',
    });
    try {
      const put = defaults.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'robot-1/bag/default-checksums.mcap', ...partOf(file, 0, MiB) }),
      );
      expect(await statusOf(put)).toEqual({ status: 411, name: 'MissingContentLength' });
    } finally {
      defaults.destroy();
    }
  });
});
