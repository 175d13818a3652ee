import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

/** S3's smallest part (but the last) of a multipart upload. */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's most parts of one multipart upload. */
export const S3_MAX_PARTS = 10_000;

/**
 * Stores a body of unknown length under `key`, visible only once `finish(keep)` decides to keep
 * it: S3 wants every request's length up front (Ceph answers 411 to a streamed body without
 * one), so the body is gathered in 5 MiB pieces, each sent as a part; a body shorter than one
 * piece is sent as one PutObject at the end. At most one piece is in memory, plus the one on
 * the wire. Used for what has no known length: the legacy API's form parts, gzip-encoded
 * whole-file bodies, gzip copies at rest.
 */
export async function bufferedUpload(
  s3: S3Client,
  bucket: string,
  key: string,
  body: AsyncIterable<Uint8Array>,
  keep: (size: number) => boolean = () => true,
): Promise<number | undefined> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let size = 0;
  let uploadId: string | undefined;
  const parts: { PartNumber: number; ETag: string | undefined }[] = [];
  const sendPart = async (): Promise<void> => {
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    uploadId ??= (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId;
    const PartNumber = parts.length + 1;
    const { ETag } = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: data }),
    );
    parts.push({ PartNumber, ETag });
  };
  try {
    for await (const piece of body) {
      pending.push(piece);
      pendingBytes += piece.byteLength;
      size += piece.byteLength;
      if (pendingBytes >= S3_MIN_PART_SIZE) await sendPart();
    }
    if (!keep(size)) {
      if (uploadId) await abort(s3, bucket, key, uploadId);
      return undefined;
    }
    if (!uploadId) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.concat(pending, pendingBytes) }));
      return size;
    }
    if (pendingBytes > 0) await sendPart();
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    return size;
  } catch (error) {
    if (uploadId) await abort(s3, bucket, key, uploadId).catch(() => undefined);
    throw error;
  }
}

async function abort(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
}
