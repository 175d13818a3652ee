import { randomUUID } from 'node:crypto';
import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { headers, MAX_WHOLE_FILE_SIZE, type PutFileResponse } from '../../common/protocol/native-protocol.js';
import { WholeFileDigest } from '../integrity/whole-file-digest.js';
import { isDiskFull } from '../storage/disk-full.js';
import { emitFileCompleted, placeVerifiedFile } from './commit-file.js';
import { checkSizeAndSpace } from './disk-space.js';
import { completedFileView } from './session-views.js';
import { findStoredCopy } from './stored-copy.js';
import type { UploadBody } from './upload-body.js';
import type { UploadContext } from './upload-context.js';
import { logUploadCompleted, logUploadStarted, type LoggedUpload } from './upload-log.js';

/**
 * How much longer than the file a gzip-encoded body may be: deflate's stored blocks add 5 bytes
 * per 64 KiB and gzip 18 bytes of framing, so incompressible data grows by well under 1 KiB per
 * 8 MiB.
 */
const GZIP_GROWTH = 64 * 1024;

/** PUT /v1/files/<path>, its path normalised and its headers checked. */
export interface WholeFileInput {
  uploader: string;
  path: string;
  /** The body's length on the wire (Content-Length). */
  length: number;
  /** True when the body is gzip-encoded: its decoded size is then known only at its end. */
  gzip: boolean;
  /** The file's SHA-256 as the client computed it, lowercase hex. */
  sha256: string;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
  body: UploadBody;
}

export interface PutFileAnswer {
  status: 200 | 201;
  body: PutFileResponse;
}

/**
 * A whole small file in one request. What is stored at the path is looked at before the body is
 * read (this exact content already there: the body is skipped and 200 answered; a different
 * file without replace: 409; too large: 413; short of disk: 507). The body is then streamed into
 * a whole-file staging upload, decoded and hashed (SHA-256 and fingerprint) on the way, verified
 * against the client's SHA-256, and committed exactly like a completed session
 * (placeVerifiedFile: atomic, durable, indexed, FILE_EXISTS and replace rules, deduplication).
 * The staging upload is aborted whatever happens unless committed; a crash leaves it to the
 * start-up sweep.
 */
export async function receiveWholeFile(context: UploadContext, input: WholeFileInput): Promise<PutFileAnswer> {
  const { uploader, path: relativePath } = input;
  const limit = Math.min(MAX_WHOLE_FILE_SIZE, context.config.maxFileSize);
  const knownSize = input.gzip ? undefined : input.length;
  if (input.length > (knownSize === undefined ? limit + GZIP_GROWTH : limit)) throw tooLarge(input.length, limit);

  // Only a file in the index is looked at in the storage now (a new path costs no storage call
  // here); one stored by other means is found when committing, after the body.
  const indexed = await context.store.getFile(uploader, relativePath);
  const stored = indexed ? await findStoredCopy(context, uploader, relativePath) : undefined;
  const record = stored?.record;
  if (
    record &&
    stored.diskSize === record.size &&
    record.sha256 === input.sha256 &&
    (knownSize === undefined || knownSize === record.size)
  ) {
    await input.body.skip();
    context.log.info(
      {
        event: 'upload_completed',
        uploader,
        path: relativePath,
        size: record.size,
        sha256: record.sha256,
        deduplicated: true,
        wholeFile: true,
      },
      `${relativePath} is already stored with sha256 ${record.sha256}; nothing changed`,
    );
    emitFileCompleted(context, 'native', null, { path: relativePath, record, deduplicated: true, indexed: true });
    return { status: 200, body: completedFileView(record) };
  }
  if (record && !input.replace && record.sha256 !== input.sha256) {
    throw new UploadError(
      'FILE_EXISTS',
      `A different file is already stored at ${relativePath}; send ${headers.uploadReplace}: true to replace it`,
    );
  }
  await checkSizeAndSpace(context, knownSize ?? limit, 'Content-Length');
  return receive(context, input, limit);
}

async function receive(context: UploadContext, input: WholeFileInput, limit: number): Promise<PutFileAnswer> {
  const { uploader, path: relativePath, body } = input;
  const knownSize = input.gzip ? undefined : input.length;
  const id = randomUUID();
  let staged = true;
  const upload: LoggedUpload = {
    record: {
      id,
      api: 'native',
      uploader,
      path: relativePath,
      size: knownSize ?? input.length,
      chunkCount: 1,
      compress: false,
      createdAt: Date.now(),
    },
  };
  logUploadStarted(context.log, upload);
  const digest = new WholeFileDigest(knownSize ?? limit, knownSize, (length) =>
    knownSize === undefined
      ? tooLarge(length, limit, 'decoded')
      : new UploadError('CHUNK_SIZE_MISMATCH', `the body is longer than its Content-Length of ${knownSize} bytes`),
  );
  let release: (() => void) | undefined;
  try {
    release = context.inFlight.reserve(uploader, knownSize ?? limit);
    await context.storage.createStaging(id, { wholeFile: true });
    await context.storage.writePart(id, { index: 0, offset: 0, length: knownSize }, digest.through(body.bytes()));
    release();
    const size = digest.length;
    if (knownSize !== undefined && size !== knownSize) {
      throw new UploadError('CHUNK_SIZE_MISMATCH', `the body had ${size} bytes, but Content-Length is ${knownSize}`);
    }
    const sha256 = digest.sha256();
    if (sha256 !== input.sha256) {
      throw new UploadError(
        'FILE_CHECKSUM_MISMATCH',
        `The body's SHA-256 is ${sha256}, not ${input.sha256} as the ` +
          `x-content-sha256 header says; nothing was stored, send the file again`,
      );
    }
    const file = {
      stagingId: id,
      api: 'native',
      uploader,
      path: relativePath,
      size,
      fingerprint: digest.fingerprint() ?? null,
      metadata: input.metadata ?? null,
      replace: input.replace,
      sessionId: null,
    } as const;
    const placed = await placeVerifiedFile(context, file, { sha256, md5: undefined }, async (placed) => {
      // A file found stored with this content but not in the index (a crash after the commit) is indexed now.
      if (!placed.indexed) await context.store.putFile(placed.record);
    });
    staged = placed.deduplicated;
    logUploadCompleted(context.log, { record: { ...upload.record, size } }, placed.path, sha256, placed.deduplicated);
    emitFileCompleted(context, 'native', null, placed);
    return { status: placed.deduplicated ? 200 : 201, body: completedFileView(placed.record) };
  } catch (error) {
    body.discardRest();
    const full = diskFull(error);
    if (full) context.freeSpace.sawFullDisk();
    throw full ?? error;
  } finally {
    release?.();
    // A committed file left its staging upload; anything else is deleted.
    if (staged) {
      await context.storage.abortStaging(id).catch((error: unknown) => {
        context.log.warn(
          { event: 'temp_cleanup_failed', tempId: id, err: error },
          `Could not delete the temp file of a whole-file upload of ${relativePath}; the next start removes it`,
        );
      });
    }
  }
}

function tooLarge(length: number, limit: number, what = 'declared'): UploadError {
  return new UploadError(
    'FILE_TOO_LARGE',
    `The ${what} body of ${length} bytes is over the ${limit} bytes (${formatSize(limit)}) ` +
      `a whole-file upload may have; upload the file through a session (POST /v1/sessions)`,
  );
}

/** A full disk while writing: 507 with a message that says nothing was kept (there is no session to resume). */
function diskFull(error: unknown): UploadError | undefined {
  if (!isDiskFull(error)) return undefined;
  return new UploadError(
    'INSUFFICIENT_STORAGE',
    'The server ran out of disk space while writing the file; nothing was stored, retry later',
    { cause: error },
  );
}
