import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3Storage } from '../../server/storage/s3-storage.js';
import { type S3Engine, useS3, withEngines } from '../engines/engines.js';
import { createBucket, createS3Client } from '../engines/s3.js';
import { listKeys, openMultipartUploads } from '../helpers/cluster.js';

/**
 * The S3 backend against Ceph's gateway: the UploadStorage contract (server/storage/upload-storage.ts)
 * as the upload use cases rely on it.
 */
const MiB = 1024 * 1024;

interface Context {
  engine: S3Engine;
  s3: S3Client;
  bucket: string;
  storage: S3Storage;
}

const context = withEngines<Context>(
  async () => {
    const engine = await useS3();
    const s3 = createS3Client(engine);
    const bucket = await createBucket(s3, 's3-backend');
    const storage = await S3Storage.open({
      bucket,
      region: engine.region,
      endpoint: engine.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: engine.accessKeyId, secretAccessKey: engine.secretAccessKey },
    });
    return { engine, s3, bucket, storage };
  },
  async ({ s3, storage }) => {
    await storage.close();
    s3.destroy();
  },
);

async function* pieces(data: Buffer, size = MiB): AsyncIterable<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
  if (data.length === 0) yield data;
}

async function bytesOf(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const piece of source) all.push(piece);
  return Buffer.concat(all);
}

function id(): string {
  return randomBytes(8).toString('hex');
}

describe('S3 storage backend', () => {
  it('chunked staging is a multipart upload at the final key: nothing there before commit, then the file', async () => {
    const { storage, s3, bucket } = context();
    const file = { uploader: 'robot-1', path: `bag/${id()}.mcap` };
    const data = randomBytes(12 * MiB + 7);
    const staging = id();
    await storage.createStaging(staging, { chunks: { size: 5 * MiB, target: file } });
    // Any order, from anywhere: chunk n is part n+1.
    for (const index of [2, 0, 1]) {
      const offset = index * 5 * MiB;
      const length = Math.min(5 * MiB, data.length - offset);
      expect(
        await storage.writePart(staging, { index, offset, length }, pieces(data.subarray(offset, offset + length))),
      ).toBe(length);
    }
    expect(await storage.stat(file)).toBeUndefined();
    expect(await storage.hasStaging(staging)).toBe(true);
    await storage.commit(staging, file, { size: data.length, replace: false });
    expect(await storage.stat(file)).toEqual({ size: data.length });
    expect((await bytesOf(storage.read(file))).equals(data)).toBe(true);
    expect(await storage.hasStaging(staging)).toBe(false);
    expect(await listKeys(s3, bucket, `staging/${staging}/`)).toEqual([]);
  });

  it('a part whose body fails before its end is not stored (an earlier, verified write of it stays)', async () => {
    const { storage } = context();
    const file = { uploader: 'robot-1', path: `bag/${id()}.mcap` };
    const data = randomBytes(5 * MiB + 3);
    const staging = id();
    await storage.createStaging(staging, { chunks: { size: 5 * MiB, target: file } });
    await storage.writePart(staging, { index: 0, offset: 0, length: 5 * MiB }, pieces(data.subarray(0, 5 * MiB)));
    const failure = new Error('checksum failed before the last piece');
    async function* failing(): AsyncIterable<Buffer> {
      yield randomBytes(MiB);
      throw failure;
    }
    await expect(storage.writePart(staging, { index: 0, offset: 0, length: 5 * MiB }, failing())).rejects.toBe(failure);
    // A body that ends short of its length fails too, instead of leaving the request waiting.
    await expect(
      storage.writePart(staging, { index: 1, offset: 5 * MiB, length: 3 }, pieces(Buffer.from('ab'))),
    ).rejects.toMatchObject({ code: 'CHUNK_SIZE_MISMATCH' });
    await storage.writePart(staging, { index: 1, offset: 5 * MiB, length: 3 }, pieces(data.subarray(5 * MiB)));
    await storage.commit(staging, file, { size: data.length, replace: false });
    expect((await bytesOf(storage.read(file))).equals(data)).toBe(true);
  });

  it('commit never overwrites without replace; with replace it does and drops the old gzip copy', async () => {
    const { storage } = context();
    const file = { uploader: 'robot-1', path: `cfg/${id()}.yaml` };
    const put = async (text: string, replace: boolean): Promise<void> => {
      const staging = id();
      await storage.createStaging(staging, { chunks: { size: 5 * MiB, target: file } });
      await storage.writePart(staging, { index: 0, offset: 0, length: text.length }, pieces(Buffer.from(text)));
      try {
        await storage.commit(staging, file, { size: text.length, replace });
      } finally {
        await storage.abortStaging(staging);
      }
    };
    await put('first', false);
    expect(await storage.writeCompressed(file, pieces(Buffer.from('gz')), () => true)).toBe(2);
    await expect(put('second', false)).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    expect((await bytesOf(storage.read(file))).toString()).toBe('first');
    await put('third', true);
    expect((await bytesOf(storage.read(file))).toString()).toBe('third');
    const { s3, bucket } = context();
    expect(await listKeys(s3, bucket, `compressed/robot-1/${file.path}`)).toEqual([]);
  });

  it('an empty file and a whole-file upload of unknown length are stored', async () => {
    const { storage } = context();
    const empty = { uploader: 'robot-1', path: `${id()}/empty.bin` };
    const staging = id();
    await storage.createStaging(staging, { chunks: { size: 5 * MiB, target: empty } });
    await storage.writePart(staging, { index: 0, offset: 0, length: 0 }, pieces(Buffer.alloc(0)));
    await storage.commit(staging, empty, { size: 0, replace: false });
    expect(await storage.stat(empty)).toEqual({ size: 0 });

    const whole = { uploader: 'robot-1', path: `${id()}/whole.bin` };
    const data = randomBytes(6 * MiB + 1); // more than one buffered part
    const wholeId = id();
    await storage.createStaging(wholeId, { wholeFile: true });
    expect(await storage.writePart(wholeId, { index: 0, offset: 0 }, pieces(data))).toBe(data.length);
    await storage.commit(wholeId, whole, { size: data.length, replace: false });
    expect((await bytesOf(storage.read(whole))).equals(data)).toBe(true);
  });

  it('legacy parts of any size: readable before commit, assembled at commit, parts left aside skipped', async () => {
    const { storage, s3, bucket } = context();
    const file = { uploader: 'robot-1', path: `legacy/${id()}.bag` };
    const sizes = [100 * 1024, 3 * MiB, 6 * MiB, 2 * MiB + 5, 11];
    const data = randomBytes(sizes.reduce((sum, size) => sum + size, 0));
    const staging = id();
    await storage.createStaging(staging);
    let offset = 0;
    for (const [index, size] of sizes.entries()) {
      await storage.writePart(staging, { index, offset }, pieces(data.subarray(offset, offset + size)));
      offset += size;
    }
    // A chunk placed once at an offset the final layout does not use (a legacy chunk re-sent shorter).
    await storage.writePart(staging, { index: 9, offset: 1 }, pieces(Buffer.from('stale')));
    const from = 50 * 1024;
    expect(
      (await bytesOf(storage.readStaged(staging, from, 4 * MiB))).equals(data.subarray(from, from + 4 * MiB)),
    ).toBe(true);
    await storage.commit(staging, file, { size: data.length, replace: false });
    expect((await bytesOf(storage.read(file))).equals(data)).toBe(true);
    expect(await listKeys(s3, bucket, `staging/${staging}/`)).toEqual([]);
    expect(await openMultipartUploads(s3, bucket)).not.toContain(`completed/${file.uploader}/${file.path}`);
  });

  it('spools: written, read, moved and removed; a listing by age leaves what was just written', async () => {
    const { storage } = context();
    const staging = id();
    await storage.createStaging(staging);
    await storage.writeSpool({ staging: undefined, name: 'part-a' }, pieces(Buffer.from('form part')));
    await storage.moveSpool({ staging: undefined, name: 'part-a' }, { staging, name: 'chunk-0' });
    expect((await bytesOf(storage.readSpool({ staging, name: 'chunk-0' }, 9))).toString()).toBe('form part');
    expect(await storage.listStaging()).toContain(staging);
    expect(await storage.listStaging({ unchangedSince: Date.now() - 60_000 })).not.toContain(staging);
    await storage.removeSpool({ staging, name: 'chunk-0' });
    await storage.abortStaging(staging);
    expect(await storage.listStaging()).not.toContain(staging);
  });

  it('abort discards a multipart upload; a discarded gzip copy leaves nothing; over-long keys refused', async () => {
    const { storage, s3, bucket } = context();
    const file = { uploader: 'robot-1', path: `${id()}/aborted.mcap` };
    const staging = id();
    await storage.createStaging(staging, { chunks: { size: 5 * MiB, target: file } });
    await storage.writePart(staging, { index: 0, offset: 0, length: 5 * MiB }, pieces(randomBytes(5 * MiB)));
    expect(await openMultipartUploads(s3, bucket)).toContain(`completed/${file.uploader}/${file.path}`);
    await storage.abortStaging(staging);
    expect(await openMultipartUploads(s3, bucket)).not.toContain(`completed/${file.uploader}/${file.path}`);
    expect(await storage.hasStaging(staging)).toBe(false);
    await expect(
      storage.writePart(staging, { index: 1, offset: 5 * MiB, length: 1 }, pieces(Buffer.from('x'))),
    ).rejects.toMatchObject({ code: 'ENOENT' });

    expect(await storage.writeCompressed(file, pieces(randomBytes(6 * MiB)), () => false)).toBeUndefined();
    expect(await listKeys(s3, bucket, `compressed/${file.uploader}/${file.path}`)).toEqual([]);
    expect(await openMultipartUploads(s3, bucket)).not.toContain(`compressed/${file.uploader}/${file.path}.gz`);

    await expect(storage.stat({ uploader: 'robot-1', path: 'a/'.repeat(600) })).rejects.toMatchObject({
      code: 'INVALID_PATH',
    });
  });

  it('a bucket that does not exist is refused at start with a message that names it', async () => {
    const { engine } = context();
    await expect(
      S3Storage.open({
        bucket: 'no-such-bucket-here',
        region: engine.region,
        endpoint: engine.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: engine.accessKeyId, secretAccessKey: engine.secretAccessKey },
      }),
    ).rejects.toThrow(/no-such-bucket-here.*does not exist/);
  });
});
