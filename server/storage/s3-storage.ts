import { Readable } from 'node:stream';
import { present } from '../../common/errors/present.js';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type Part,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { UploadError } from '../../common/errors/upload-error.js';
import { bufferedUpload, S3_MAX_PARTS, S3_MIN_PART_SIZE } from './s3-buffered-upload.js';
import { createS3Client, isS3NotFound, type S3Location } from './s3-client.js';
import { completedKey, compressedKey } from './stored-file-layout.js';
import type { PartPlace, SpoolRef, StoredFile, StoredFileInfo, UploadStorage } from './upload-storage.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const STAGING = 'staging/';
/** Where stored files' keys begin (completedKey). */
const COMPLETED = 'completed/';
/** The spools of no staging upload yet (legacy form parts that arrive before their upload_id). */
const SHARED_SPOOLS = 'incoming';
/** S3's longest key, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;
/** The largest object one CopyObject may copy (S3: 5 GiB); larger ones are copied part by part. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;
/** Deletes and part copies run this many at a time. */
const PARALLEL = 8;

/** What `createStaging` wrote about a staging upload, under `staging/<id>/upload`. */
type StagingMarker =
  | { kind: 'chunks'; key: string; uploadId: string; chunkSize: number }
  | { kind: 'parts'; startedAt: number };

/** A piece of a staged file: `length` bytes from the start of the object at `key`. */
interface Segment {
  key: string;
  length: number;
}

/**
 * The storage in an S3-compatible bucket (AWS, Ceph's RADOS Gateway, MinIO), shared by every
 * server process that uses the bucket: nothing about an upload is kept in one process's memory
 * or disk. Keys:
 * - `completed/<uploader>/<path>`, `compressed/<uploader>/<path>.gz`: as on the local disk.
 * - a native session (`createStaging` with `chunks`): a multipart upload at its final key, chunk
 *   n as part n+1, completed only at commit (so never visible before it is verified), and a
 *   marker object `staging/<id>/upload` naming the upload, so that any process finds it.
 * - a legacy session or a whole-file upload: one object per written part,
 *   `staging/<id>/p/<offset>`, readable; commit assembles them under the final key (a copy of one
 *   object, or a multipart upload of copied and concatenated parts).
 * - spools: `staging/<id>/s/<name>`, `staging/incoming/s/<name>`.
 * A crash can leave an incomplete multipart upload without its marker (between the two
 * requests that make them): a bucket lifecycle rule that aborts incomplete multipart uploads
 * after a few days more than sessionExpiry cleans those (docs/scaling-out.md).
 */
export class S3Storage implements UploadStorage {
  readonly root: string;
  readonly chunkedStaging = { minChunkSize: S3_MIN_PART_SIZE, maxChunks: S3_MAX_PARTS } as const;
  readonly #s3: S3Client;
  readonly #bucket: string;
  /** Markers read or written by this process (a marker never changes once written). */
  readonly #markers = new Map<string, StagingMarker>();
  /** Whole-file uploads: one part, written and committed by one request of this process, so no marker. */
  readonly #wholeFiles = new Set<string>();

  private constructor(s3: S3Client, bucket: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.root = `s3://${bucket}`;
  }

  /** Connects and checks that the bucket exists and the keys may use it. */
  static async open(location: S3Location, note?: (message: string) => void): Promise<S3Storage> {
    const storage = new S3Storage(createS3Client(location, note), location.bucket);
    try {
      await storage.checkReady();
    } catch (error) {
      storage.#s3.destroy();
      throw error;
    }
    return storage;
  }

  async checkReady(): Promise<void> {
    try {
      await this.#s3.send(new HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const why =
        status === 404
          ? 'it does not exist'
          : status === 403
            ? 'the access key may not use it'
            : (error as Error).message || (error as Error).name;
      throw new UploadError('STATE_DIR', `Cannot use the bucket ${this.#bucket}: ${why}`, { cause: error });
    }
  }

  async close(): Promise<void> {
    this.#s3.destroy();
  }

  async createStaging(
    id: string,
    options: { wholeFile?: boolean; chunks?: { size: number; target: StoredFile } } = {},
  ): Promise<void> {
    checkName(id);
    if (options.wholeFile) {
      this.#wholeFiles.add(id);
      return;
    }
    let marker: StagingMarker;
    if (options.chunks) {
      const key = this.#fileKey(completedKey(options.chunks.target));
      const { UploadId } = await this.#s3.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key }));
      marker = {
        kind: 'chunks',
        key,
        uploadId: present(UploadId, 'the id of a new multipart upload'),
        chunkSize: options.chunks.size,
      };
    } else {
      marker = { kind: 'parts', startedAt: Date.now() };
    }
    await this.#put(markerKey(id), JSON.stringify(marker));
    this.#markers.set(id, marker);
  }

  async writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number> {
    const marker = this.#wholeFiles.has(id) ? undefined : await this.#marker(id);
    if (marker?.kind === 'chunks') {
      if (part.length === undefined) throw new UploadError('INTERNAL', 'a chunk is written without its length');
      const counted = new CountedBody(body, part.length);
      try {
        await this.#s3.send(
          new UploadPartCommand({
            Bucket: this.#bucket,
            Key: marker.key,
            UploadId: marker.uploadId,
            PartNumber: part.index + 1,
            ContentLength: part.length,
            Body: counted.stream(),
          }),
          counted.options,
        );
      } catch (error) {
        if (counted.error !== undefined) throw counted.error;
        if (isS3NotFound(error)) throw stagingGone(id, error);
        throw error;
      }
      return counted.bytes;
    }
    return this.#putStream(partKey(id, part.offset), body, part.length);
  }

  async *readStaged(id: string, offset: number, length: number): AsyncIterable<Buffer> {
    const marker = this.#wholeFiles.has(id) ? undefined : await this.#marker(id);
    if (marker?.kind === 'chunks')
      throw new UploadError('INTERNAL', 'the chunks of a multipart upload cannot be read before it is completed');
    const objects = await this.#partObjects(id);
    let position = offset;
    const end = offset + length;
    while (position < end) {
      const holder = objects.find((object) => object.offset <= position && position < object.offset + object.size);
      if (!holder) throw new UploadError('INTERNAL', `the staged data of ${id} has no byte ${position}`);
      const upTo = Math.min(end, holder.offset + holder.size);
      yield* this.#readObject(holder.key, position - holder.offset, upTo - position);
      position = upTo;
    }
  }

  async hasStaging(id: string): Promise<boolean> {
    let marker: StagingMarker | undefined;
    try {
      marker = await this.#readMarker(id);
    } catch (error) {
      if (isS3NotFound(error)) return false;
      throw error;
    }
    if (marker.kind !== 'chunks') return true;
    try {
      await this.#s3.send(
        new ListPartsCommand({ Bucket: this.#bucket, Key: marker.key, UploadId: marker.uploadId, MaxParts: 1 }),
      );
      return true;
    } catch (error) {
      if (isS3NotFound(error)) return false;
      throw error;
    }
  }

  async commit(id: string, file: StoredFile, options: { size: number; replace: boolean }): Promise<void> {
    const key = this.#fileKey(completedKey(file));
    const marker = this.#wholeFiles.has(id) ? undefined : await this.#marker(id);
    if (marker?.kind === 'chunks') {
      if (marker.key !== key) throw new UploadError('INTERNAL', `staging upload ${id} belongs to another file`);
      const parts = await this.#checkedParts(id, marker, options.size);
      if (!options.replace) await this.#refuseExisting(key, file);
      try {
        await this.#s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#bucket,
            Key: key,
            UploadId: marker.uploadId,
            MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
          }),
        );
      } catch (error) {
        if (isS3NotFound(error)) throw stagingGone(id, error);
        throw error;
      }
    } else {
      const segments = await this.#segments(id, options.size);
      if (!options.replace) await this.#refuseExisting(key, file);
      await this.#assemble(key, segments, options.size);
    }
    this.#wholeFiles.delete(id);
    this.#markers.delete(id);
    await this.#deletePrefix(stagingPrefix(id));
    if (options.replace) await this.#delete(this.#fileKey(compressedKey(file))).catch(() => undefined);
  }

  async abortStaging(id: string): Promise<void> {
    checkName(id);
    this.#wholeFiles.delete(id);
    this.#markers.delete(id);
    let marker: StagingMarker | undefined;
    try {
      marker = await this.#readMarker(id);
    } catch (error) {
      if (!isS3NotFound(error) && !(error instanceof SyntaxError)) throw error;
    }
    if (marker?.kind === 'chunks') {
      await this.#s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: marker.key, UploadId: marker.uploadId }))
        .catch((error: unknown) => {
          if (!isS3NotFound(error)) throw error;
        });
    }
    await this.#deletePrefix(stagingPrefix(id));
  }

  async listStaging(options: { unchangedSince?: number } = {}): Promise<string[]> {
    const latest = new Map<string, number>();
    for await (const object of this.#list(STAGING)) {
      const [id = ''] = object.key.slice(STAGING.length).split('/');
      latest.set(id, Math.max(latest.get(id) ?? 0, object.lastModified));
    }
    const since = options.unchangedSince;
    return [...latest]
      .filter(([id, changed]) => SAFE_NAME.test(id) && (since === undefined || changed < since))
      .map(([id]) => id);
  }

  async writeSpool(spool: SpoolRef, body: AsyncIterable<Uint8Array>, length?: number): Promise<number> {
    return this.#putStream(spoolKey(spool), body, length);
  }

  async *readSpool(spool: SpoolRef, length: number): AsyncIterable<Buffer> {
    if (length > 0) yield* this.#readObject(spoolKey(spool), 0, length);
  }

  async moveSpool(from: SpoolRef, to: SpoolRef): Promise<void> {
    await this.#s3.send(
      new CopyObjectCommand({ Bucket: this.#bucket, Key: spoolKey(to), CopySource: this.#source(spoolKey(from)) }),
    );
    await this.#delete(spoolKey(from));
  }

  async removeSpool(spool: SpoolRef): Promise<void> {
    await this.#delete(spoolKey(spool));
  }

  /**
   * Every stored file: one ListObjectsV2 walk over `completed/` (staging uploads live under
   * `staging/`, and a multipart upload at its final key is no object before it is completed).
   */
  async *listStored(): AsyncIterable<StoredFileInfo> {
    for await (const object of this.#list(COMPLETED)) {
      const rest = object.key.slice(COMPLETED.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || slash === rest.length - 1) continue;
      yield {
        uploader: rest.slice(0, slash),
        path: rest.slice(slash + 1),
        size: object.size,
        changedAt: object.lastModified,
      };
    }
  }

  async stat(file: StoredFile): Promise<{ size: number } | undefined> {
    return this.#head(this.#fileKey(completedKey(file)));
  }

  async *read(file: StoredFile): AsyncIterable<Buffer> {
    const key = this.#fileKey(completedKey(file));
    const { Body } = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }));
    for await (const piece of Body as Readable) yield piece as Buffer;
  }

  async *readRange(file: StoredFile, offset: number, length: number): AsyncIterable<Buffer> {
    if (length === 0) return;
    const key = this.#fileKey(completedKey(file));
    const { Body } = await this.#s3.send(
      new GetObjectCommand({ Bucket: this.#bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }),
    );
    for await (const piece of Body as Readable) yield piece as Buffer;
  }

  async writeCompressed(
    file: StoredFile,
    body: AsyncIterable<Uint8Array>,
    keep: (size: number) => boolean,
  ): Promise<number | undefined> {
    const key = compressedKey(file);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
      for await (const _piece of body); // the copy cannot be stored: drain what the caller pipes in
      return undefined;
    }
    return bufferedUpload(this.#s3, this.#bucket, key, body, keep);
  }

  /** The key of a stored file; INVALID_PATH when it is longer than S3 allows. */
  #fileKey(key: string): string {
    if (Buffer.byteLength(key) > MAX_KEY_BYTES)
      throw new UploadError(
        'INVALID_PATH',
        `The path is too long for the bucket: its key would have ${Buffer.byteLength(key)} bytes, ` +
          `at most ${MAX_KEY_BYTES} are allowed`,
      );
    return key;
  }

  async #marker(id: string): Promise<StagingMarker> {
    const known = this.#markers.get(id);
    if (known) return known;
    try {
      const marker = await this.#readMarker(id);
      this.#markers.set(id, marker);
      return marker;
    } catch (error) {
      if (isS3NotFound(error)) throw stagingGone(id, error);
      throw error;
    }
  }

  async #readMarker(id: string): Promise<StagingMarker> {
    checkName(id);
    const { Body } = await this.#s3.send(new GetObjectCommand({ Bucket: this.#bucket, Key: markerKey(id) }));
    return JSON.parse(await (Body as { transformToString(): Promise<string> }).transformToString()) as StagingMarker;
  }

  /** The parts of a multipart staging upload, checked to be exactly the file's chunks. */
  async #checkedParts(id: string, marker: Extract<StagingMarker, { kind: 'chunks' }>, size: number): Promise<Part[]> {
    const parts: Part[] = [];
    let marker_: string | undefined;
    try {
      do {
        const page = await this.#s3.send(
          new ListPartsCommand({
            Bucket: this.#bucket,
            Key: marker.key,
            UploadId: marker.uploadId,
            PartNumberMarker: marker_,
          }),
        );
        parts.push(...(page.Parts ?? []));
        marker_ = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker_);
    } catch (error) {
      if (isS3NotFound(error)) throw stagingGone(id, error);
      throw error;
    }
    const count = Math.max(1, Math.ceil(size / marker.chunkSize));
    const wrong =
      parts.length !== count
        ? `${parts.length} parts instead of ${count}`
        : parts.find((part, index) => {
            const expected = index === count - 1 ? size - index * marker.chunkSize : marker.chunkSize;
            return part.PartNumber !== index + 1 || part.Size !== expected;
          });
    if (wrong)
      throw new UploadError(
        'INTERNAL',
        `the multipart upload of ${id} does not hold the file's chunks (${
          typeof wrong === 'string' ? wrong : `part ${wrong.PartNumber} has ${wrong.Size} bytes`
        })`,
      );
    return parts;
  }

  async #refuseExisting(key: string, file: StoredFile): Promise<void> {
    if (await this.#head(key)) throw new UploadError('FILE_EXISTS', `${file.path} is already stored`);
  }

  /** The part objects of a staging upload, by offset. */
  async #partObjects(id: string): Promise<{ key: string; offset: number; size: number }[]> {
    const objects: { key: string; offset: number; size: number }[] = [];
    const prefix = `${stagingPrefix(id)}p/`;
    for await (const object of this.#list(prefix))
      objects.push({ key: object.key, offset: Number(object.key.slice(prefix.length)), size: object.size });
    return objects.sort((a, b) => a.offset - b.offset);
  }

  /** The objects that make up the staged file's first `size` bytes, in order (ones left aside are skipped). */
  async #segments(id: string, size: number): Promise<Segment[]> {
    const byOffset = new Map((await this.#partObjects(id)).map((object) => [object.offset, object]));
    const segments: Segment[] = [];
    let position = 0;
    do {
      const object = byOffset.get(position);
      if (!object || (object.size === 0 && position < size))
        throw new UploadError('INTERNAL', `the staged data of ${id} has no byte ${position} of ${size}`);
      const length = Math.min(object.size, size - position);
      segments.push({ key: object.key, length });
      position += length;
    } while (position < size);
    return segments;
  }

  /** Makes `segments` one object under `key`: a copy, or a multipart upload of copied and concatenated parts. */
  async #assemble(key: string, segments: Segment[], size: number): Promise<void> {
    const only = segments.length === 1 ? segments[0] : undefined;
    if (only && size <= MAX_COPY_BYTES && (await this.#head(only.key))?.size === only.length) {
      await this.#s3.send(
        new CopyObjectCommand({ Bucket: this.#bucket, Key: key, CopySource: this.#source(only.key) }),
      );
      return;
    }
    // Parts of at least 5 MiB (but the last): a large segment is copied inside the bucket, a run
    // of small ones (the legacy API's small chunks) is streamed through as one part.
    const groups: Segment[][] = [];
    let run: Segment[] = [];
    let runBytes = 0;
    for (const segment of segments) {
      if (run.length === 0 && segment.length >= S3_MIN_PART_SIZE) {
        groups.push([segment]);
        continue;
      }
      run.push(segment);
      runBytes += segment.length;
      if (runBytes >= S3_MIN_PART_SIZE) {
        groups.push(run);
        run = [];
        runBytes = 0;
      }
    }
    if (run.length > 0) groups.push(run);
    const { UploadId } = await this.#s3.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key }));
    try {
      const parts = await mapLimited(groups, PARALLEL, async (group, index) => {
        const PartNumber = index + 1;
        const common = { Bucket: this.#bucket, Key: key, UploadId, PartNumber };
        const [first] = group;
        if (group.length === 1 && first && first.length >= S3_MIN_PART_SIZE) {
          const answer = await this.#s3.send(
            new UploadPartCopyCommand({
              ...common,
              CopySource: this.#source(first.key),
              CopySourceRange: `bytes=0-${first.length - 1}`,
            }),
          );
          return { PartNumber, ETag: answer.CopyPartResult?.ETag };
        }
        const length = group.reduce((sum, segment) => sum + segment.length, 0);
        const body = new CountedBody(this.#concat(group), length);
        const answer = await this.#s3.send(
          new UploadPartCommand({ ...common, ContentLength: length, Body: body.stream() }),
          body.options,
        );
        return { PartNumber, ETag: answer.ETag };
      });
      await this.#s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      await this.#s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId }))
        .catch(() => undefined);
      throw error;
    }
  }

  async *#concat(segments: Segment[]): AsyncIterable<Buffer> {
    for (const segment of segments) if (segment.length > 0) yield* this.#readObject(segment.key, 0, segment.length);
  }

  async *#readObject(key: string, offset: number, length: number): AsyncIterable<Buffer> {
    const { Body } = await this.#s3.send(
      new GetObjectCommand({ Bucket: this.#bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }),
    );
    let read = 0;
    for await (const piece of Body as Readable) {
      read += (piece as Buffer).byteLength;
      yield piece as Buffer;
    }
    if (read !== length) throw new UploadError('INTERNAL', `${key} ended after ${read} of ${length} bytes`);
  }

  async #putStream(key: string, body: AsyncIterable<Uint8Array>, length: number | undefined): Promise<number> {
    if (length === undefined) return (await bufferedUpload(this.#s3, this.#bucket, key, body)) ?? 0;
    const counted = new CountedBody(body, length);
    try {
      await this.#s3.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: key, ContentLength: length, Body: counted.stream() }),
        counted.options,
      );
    } catch (error) {
      throw counted.error ?? error;
    }
    return counted.bytes;
  }

  async #put(key: string, text: string): Promise<void> {
    await this.#s3.send(new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: text }));
  }

  async #head(key: string): Promise<{ size: number } | undefined> {
    try {
      const head = await this.#s3.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isS3NotFound(error)) return undefined;
      throw error;
    }
  }

  async #delete(key: string): Promise<void> {
    await this.#s3.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch((error: unknown) => {
      if (!isS3NotFound(error)) throw error;
    });
  }

  async #deletePrefix(prefix: string): Promise<void> {
    const keys: string[] = [];
    for await (const object of this.#list(prefix)) keys.push(object.key);
    await mapLimited(keys, PARALLEL, (key) => this.#delete(key));
  }

  async *#list(prefix: string): AsyncIterable<{ key: string; size: number; lastModified: number }> {
    let token: string | undefined;
    do {
      const page = await this.#s3.send(
        new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key)
          yield { key: object.Key, size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0 };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  #source(key: string): string {
    return `${this.#bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
}

/**
 * A request body that counts its bytes and must have exactly `length`: a source that ends
 * early or runs long fails the request (instead of leaving it waiting for bytes that never
 * come), and the source's own error (a failed CRC, a client that went away) is kept, to be
 * rethrown instead of the SDK's report of the aborted request.
 */
class CountedBody {
  readonly #source: AsyncIterable<Uint8Array>;
  readonly #length: number;
  /** Aborts the request when the source fails (the SDK pipes the body and would wait for the missing bytes). */
  readonly #abort = new AbortController();
  bytes = 0;
  error: unknown;

  constructor(source: AsyncIterable<Uint8Array>, length: number) {
    this.#source = source;
    this.#length = length;
  }

  stream(): Readable {
    const stream = Readable.from(this.#pieces(), { objectMode: false });
    stream.on('error', () => this.#abort.abort());
    return stream;
  }

  /** For `send(command, options)`: the request is aborted when the body fails. */
  get options(): { abortSignal: AbortSignal } {
    return { abortSignal: this.#abort.signal };
  }

  async *#pieces(): AsyncIterable<Uint8Array> {
    try {
      for await (const piece of this.#source) {
        this.bytes += piece.byteLength;
        if (this.bytes > this.#length)
          throw new UploadError('CHUNK_SIZE_MISMATCH', `the body is longer than the ${this.#length} bytes expected`);
        yield piece;
      }
      if (this.bytes !== this.#length)
        throw new UploadError(
          'CHUNK_SIZE_MISMATCH',
          `the body had ${this.bytes} bytes, but ${this.#length} were expected`,
        );
    } catch (error) {
      this.error ??= error;
      throw error;
    }
  }
}

function checkName(id: string): void {
  if (!SAFE_NAME.test(id)) throw new UploadError('INTERNAL', `unsafe staging name ${JSON.stringify(id)}`);
}

function stagingPrefix(id: string): string {
  checkName(id);
  return `${STAGING}${id}/`;
}

function markerKey(id: string): string {
  return `${stagingPrefix(id)}upload`;
}

function partKey(id: string, offset: number): string {
  return `${stagingPrefix(id)}p/${String(offset).padStart(16, '0')}`;
}

function spoolKey(spool: SpoolRef): string {
  if (!SAFE_NAME.test(spool.name)) throw new UploadError('INTERNAL', `unsafe spool name ${JSON.stringify(spool.name)}`);
  return `${stagingPrefix(spool.staging ?? SHARED_SPOOLS)}s/${spool.name}`;
}

/** An error `isMissingStaging` recognises: the staging upload was aborted or deleted. */
function stagingGone(id: string, cause: unknown): Error {
  return Object.assign(new Error(`staging upload ${id} is gone`, { cause }), { code: 'ENOENT' });
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(present(items[index], `item ${index}`), index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
