import { createHash } from 'node:crypto';
import path from 'node:path';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { fingerprintOf, fingerprintRanges } from '../../common/protocol/fingerprint.js';
import { MAX_SEGMENT_BYTES, type CompletedFile } from '../../common/protocol/native-protocol.js';
import { logUploadCompleted } from '../logging/upload-log.js';
import type { CompletionResult, FileRecord } from '../sessions/session-record.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { findStoredCopy, type StoredCopy } from './stored-copy.js';
import { DATA_BLOB, type UploadContext } from './upload-context.js';

export interface CommitOutcome {
  result: CompletionResult;
  /** The gzip copy at rest, when one was asked for: resolves with its size, or undefined when not kept. */
  compression: Promise<number | undefined> | undefined;
}

const MAX_UNIQUE_ATTEMPTS = 1000;

/**
 * The last step of both APIs, once the whole file's digest is verified: make the data blob
 * visible under `completed/<uploader>/<path>` (atomically and durably, via the storage), record
 * it in the file index and the session's tombstone, delete the temp area, and queue the gzip
 * copy. What is already stored at the path decides the outcome:
 * - the same content: nothing is moved, the stored file is the answer (deduplicated);
 * - a different file: the native API refuses with FILE_EXISTS unless the session may replace it;
 *   the seed API stores under a unique name (`name.1.ext`) and reports that path.
 */
export async function commitSessionFile(context: UploadContext, runtime: SessionRuntime, digest: { sha256: string; md5: string | undefined }): Promise<CommitOutcome> {
  const r = runtime.record;
  const fingerprint = r.fingerprint ?? (await fingerprintBlob(context, r.id, r.size));
  let target = r.path;
  let existing: FileRecord | undefined;
  for (let attempt = 1; ; attempt += 1) {
    const stored = await findStoredCopy(context, r.uploader, target);
    if (stored.exists && (await sameContent(context, stored, r.uploader, target, r.size, digest.sha256))) {
      existing = stored.record;
      break;
    }
    if (stored.exists && !r.replace) {
      if (r.api === 'native') throw fileExists(target);
      if (attempt > MAX_UNIQUE_ATTEMPTS) throw new UploadError('FILE_EXISTS', `Too many files named like ${r.path}`);
      target = uniqueName(r.path, attempt);
      continue;
    }
    try {
      await context.storage.commit(r.id, DATA_BLOB, r.uploader, target, { replace: r.replace });
      if (stored.exists) await context.storage.removeCompressed(r.uploader, target).catch(() => undefined);
      break;
    } catch (error) {
      if (!isUploadError(error, 'FILE_EXISTS') || r.api === 'native' || r.replace) throw error;
    }
  }

  const now = Date.now();
  const fileRecord: FileRecord = existing ?? {
    uploader: r.uploader,
    path: target,
    size: r.size,
    sha256: digest.sha256,
    md5: digest.md5 ?? null,
    fingerprint,
    completedAt: now,
    metadata: r.metadata,
    compressedSize: null,
    sessionId: r.id,
  };
  const compress = r.compress && !existing;
  const file: CompletedFile = {
    state: 'complete',
    path: target,
    size: r.size,
    sha256: fileRecord.sha256,
    completedAt: new Date(fileRecord.completedAt).toISOString(),
    ...(fileRecord.compressedSize !== null ? { compressedSize: fileRecord.compressedSize } : {}),
  };
  const result: CompletionResult = {
    file,
    storedPath: target,
    md5: digest.md5 ?? fileRecord.md5,
    compressedLocation: fileRecord.compressedSize !== null ? context.storage.compressedLocation(r.uploader, target) : null,
    compressionPending: compress,
  };
  context.store.completeSession(r.id, result, { ...fileRecord, md5: fileRecord.md5 ?? digest.md5 ?? null }, now, now + context.config.sessionExpiry * 1000);
  r.state = 'complete';
  r.result = result;
  runtime.chunks.clear();
  context.runtimes.drop(r.id);
  await context.storage.removeSession(r.id);
  logUploadCompleted(context.log, runtime, target, fileRecord.sha256, existing !== undefined);

  let compression: Promise<number | undefined> | undefined;
  if (compress) {
    compression = context.gzip.enqueue({ uploader: r.uploader, path: target, size: r.size }).then((size) => {
      result.compressionPending = false;
      if (size !== undefined) {
        result.compressedLocation = context.storage.compressedLocation(r.uploader, target);
        result.file.compressedSize = size;
      }
      try {
        context.store.setResult(r.id, result);
      } catch (error) {
        // The store is closed when the server shuts down during a compression; the copy is kept.
        context.log.warn({ event: 'compression_unrecorded', sessionId: r.id, err: error }, `Could not record the gzip copy of ${target}`);
      }
      return size;
    });
  }
  return { result, compression };
}

/**
 * `run1/a.bag` → `run1/a.1.bag` (the seed API's way of never overwriting another file). A name
 * already at the file system's limit (MAX_SEGMENT_BYTES) loses code points at the end of its stem
 * to make room for the counter, so the unique name can always be stored.
 */
export function uniqueName(relativePath: string, n: number): string {
  const dir = path.posix.dirname(relativePath);
  const base = path.posix.basename(relativePath);
  const dot = base.lastIndexOf('.');
  const name = (dot > 0 ? fitted(base.slice(0, dot), `.${n}${base.slice(dot)}`) : undefined) ?? fitted(base, `.${n}`)!;
  return dir === '.' ? name : `${dir}/${name}`;
}

/** `stem + suffix`, the stem shortened (by whole code points) to fit MAX_SEGMENT_BYTES; undefined when no stem is left. */
function fitted(stem: string, suffix: string): string | undefined {
  const points = Array.from(stem);
  while (points.length > 0 && Buffer.byteLength(points.join('') + suffix) > MAX_SEGMENT_BYTES) points.pop();
  return points.length > 0 ? points.join('') + suffix : undefined;
}

/**
 * Whether the stored file is this content. An indexed file is compared by its recorded SHA-256.
 * A file without an index entry (left by a crash between the move and the record, or put
 * there by hand) is hashed when its size matches: rare, and it saves re-sending.
 */
async function sameContent(context: UploadContext, stored: StoredCopy, uploader: string, relativePath: string, size: number, sha256: string): Promise<boolean> {
  if (stored.diskSize !== size) return false;
  if (stored.record) return stored.record.sha256 === sha256;
  const hash = createHash('sha256');
  for await (const piece of context.storage.readCompleted(uploader, relativePath)) hash.update(piece);
  return hash.digest('hex') === sha256;
}

async function fingerprintBlob(context: UploadContext, sessionId: string, size: number): Promise<string> {
  const samples: Buffer[] = [];
  for (const [position, length] of fingerprintRanges(size)) {
    const pieces: Buffer[] = [];
    for await (const piece of context.storage.readAt(sessionId, DATA_BLOB, position, length)) pieces.push(piece);
    samples.push(Buffer.concat(pieces));
  }
  return fingerprintOf(size, samples);
}

function fileExists(relativePath: string): UploadError {
  return new UploadError('FILE_EXISTS', `A different file is already stored at ${relativePath}; create the session with "replace": true to replace it`);
}
