import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { formatSize } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { headers, MAX_WHOLE_FILE_SIZE, type PutFileResponse } from '../../common/protocol/native-protocol.js';
import { normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { drainBody, requestBody } from '../http/request-body.js';
import { readWholeFileHeaders, type WholeFileHeaders } from '../http/whole-file-headers.js';
import { WholeFileDigest } from '../integrity/whole-file-digest.js';
import { logUploadCompleted, logUploadStarted, type LoggedUpload } from '../logging/upload-log.js';
import { placeVerifiedFile } from './commit-file.js';
import { checkSizeAndSpace } from './disk-space.js';
import { completedFileView } from './session-views.js';
import { findStoredCopy } from './stored-copy.js';
import { WHOLE_FILE_AREA, type UploadContext } from './upload-context.js';

/**
 * How much longer than the file a gzip-encoded body may be: deflate's stored blocks add 5 bytes
 * per 64 KiB and gzip 18 bytes of framing, so incompressible data grows by well under 1 KiB per
 * 8 MiB.
 */
const GZIP_GROWTH = 64 * 1024;

export interface PutFileAnswer {
  status: 200 | 201;
  body: PutFileResponse;
}

/**
 * PUT /v1/files/<path>: a whole small file in one request. The headers are checked and what is
 * stored at the path is looked at before the body is read (this exact content already there:
 * the body is drained and 200 answered; a different file without replace: 409; too large: 413;
 * no Content-Length: 411; short of disk: 507). The body is then streamed into its own temp area,
 * decoded and hashed (SHA-256 and fingerprint) on the way, verified against `x-content-sha256`,
 * and committed exactly like a completed session (placeVerifiedFile: atomic, fsynced, indexed,
 * FILE_EXISTS and replace rules, deduplication). The temp file (in WHOLE_FILE_AREA) is flushed to
 * disk as it is closed, and deleted whatever happens; a crash leaves it to the startup sweep.
 */
export async function receiveWholeFile(context: UploadContext, uploader: string, rawPath: string, req: IncomingMessage): Promise<PutFileAnswer> {
  const relativePath = normaliseRelativePath(rawPath);
  const h = readWholeFileHeaders(req);
  const limit = Math.min(MAX_WHOLE_FILE_SIZE, context.config.maxFileSize);
  const knownSize = h.encoding === 'identity' ? h.length : undefined;
  if (h.length > (knownSize === undefined ? limit + GZIP_GROWTH : limit)) throw tooLarge(h.length, limit);

  // Only a file in the index is looked at on disk now (a new path costs no file system call here);
  // one stored by other means is found when committing, after the body.
  const indexed = context.store.getFile(uploader, relativePath);
  const stored = indexed ? await findStoredCopy(context, uploader, relativePath) : undefined;
  const record = stored?.record;
  if (record && stored.diskSize === record.size && record.sha256 === h.sha256 && (knownSize === undefined || knownSize === record.size)) {
    await drainBody(req);
    context.log.info(
      { event: 'upload_completed', uploader, path: relativePath, size: record.size, sha256: record.sha256, deduplicated: true, wholeFile: true },
      `${relativePath} is already stored with sha256 ${record.sha256}; nothing changed`,
    );
    return { status: 200, body: completedFileView(record) };
  }
  if (record && !h.replace && record.sha256 !== h.sha256) {
    throw new UploadError('FILE_EXISTS', `A different file is already stored at ${relativePath}; send ${headers.uploadReplace}: true to replace it`);
  }
  await checkSizeAndSpace(context, knownSize ?? limit, 'Content-Length');
  return receive(context, uploader, relativePath, h, limit, req);
}

async function receive(context: UploadContext, uploader: string, relativePath: string, h: WholeFileHeaders, limit: number, req: IncomingMessage): Promise<PutFileAnswer> {
  const knownSize = h.encoding === 'identity' ? h.length : undefined;
  const id = randomUUID();
  let tempLeft = true;
  const upload: LoggedUpload = {
    record: { id, api: 'native', uploader, path: relativePath, size: knownSize ?? h.length, chunkCount: 1, compress: false, createdAt: Date.now() },
  };
  logUploadStarted(context.log, upload);
  const body = requestBody(req, h.encoding);
  const digest = new WholeFileDigest(knownSize ?? limit, knownSize, (length) =>
    knownSize === undefined ? tooLarge(length, limit, 'decoded') : new UploadError('CHUNK_SIZE_MISMATCH', `the body is longer than its Content-Length of ${knownSize} bytes`),
  );
  try {
    await context.storage.writeAt(WHOLE_FILE_AREA, id, 0, digest.through(body.source), { sync: true });
    const size = digest.length;
    if (knownSize !== undefined && size !== knownSize) {
      throw new UploadError('CHUNK_SIZE_MISMATCH', `the body had ${size} bytes, but Content-Length is ${knownSize}`);
    }
    const sha256 = digest.sha256();
    if (sha256 !== h.sha256) {
      throw new UploadError('FILE_CHECKSUM_MISMATCH', `The body's SHA-256 is ${sha256}, not ${h.sha256} as the x-content-sha256 header says; nothing was stored, send the file again`);
    }
    const file = { tempId: WHOLE_FILE_AREA, blob: id, api: 'native', uploader, path: relativePath, size, fingerprint: digest.fingerprint() ?? null, metadata: h.metadata ?? null, replace: h.replace, sessionId: null } as const;
    const placed = await placeVerifiedFile(context, file, { sha256, md5: undefined }, (placed) => {
      // A file found on disk with this content but not in the index (a crash after the move) is indexed now.
      if (!placed.indexed) context.store.putFile(placed.record);
    });
    tempLeft = placed.deduplicated;
    logUploadCompleted(context.log, { record: { ...upload.record, size } }, placed.path, sha256, placed.deduplicated);
    return { status: placed.deduplicated ? 200 : 201, body: completedFileView(placed.record) };
  } catch (error) {
    body.discardRest();
    throw diskFull(error) ?? error;
  } finally {
    // A committed file was moved out of the temp area; anything else is deleted.
    if (tempLeft) {
      await context.storage.removeBlob(WHOLE_FILE_AREA, id).catch((error: unknown) => {
        context.log.warn({ event: 'temp_cleanup_failed', tempId: id, err: error }, `Could not delete the temp file of a whole-file upload of ${relativePath}; the next start removes it`);
      });
    }
  }
}

function tooLarge(length: number, limit: number, what = 'declared'): UploadError {
  return new UploadError(
    'FILE_TOO_LARGE',
    `The ${what} body of ${length} bytes is over the ${limit} bytes (${formatSize(limit)}) a whole-file upload may have; upload the file through a session (POST /v1/sessions)`,
  );
}

/** ENOSPC while writing: 507 with a message that says nothing was kept (there is no session to resume). */
function diskFull(error: unknown): UploadError | undefined {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno !== 'ENOSPC' && errno !== 'EDQUOT') return undefined;
  return new UploadError('INSUFFICIENT_STORAGE', 'The server ran out of disk space while writing the file; nothing was stored, retry later', { cause: error });
}
