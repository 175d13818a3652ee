import { createHash } from 'node:crypto';
import path from 'node:path';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { finishFingerprint, fingerprintRanges, startFingerprint } from '../../common/protocol/fingerprint.js';
import { MAX_SEGMENT_BYTES } from '../../common/protocol/native-protocol.js';
import { logUploadCompleted } from '../logging/upload-log.js';
import type { CompletionResult, FileRecord, SessionApi } from '../sessions/session-record.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { completedFileView } from './session-views.js';
import { findStoredCopy, type StoredCopy } from './stored-copy.js';
import { DATA_BLOB, type UploadContext } from './upload-context.js';

export interface CommitOutcome {
  result: CompletionResult;
  /** The gzip copy at rest, when one was asked for: resolves with its size, or undefined when not kept. */
  compression: Promise<number | undefined> | undefined;
}

const MAX_UNIQUE_ATTEMPTS = 1000;
const NOTHING_STORED: StoredCopy = { record: undefined, diskSize: undefined, exists: false };

/** A verified file waiting in a temp area (blob `blob` of `tempId`) to be made visible. */
export interface VerifiedFile {
  /** The temp area: a session's id, or WHOLE_FILE_AREA. */
  tempId: string;
  /** The blob holding the file: DATA_BLOB for a session, a random name for a whole-file upload. */
  blob: string;
  api: SessionApi;
  uploader: string;
  /** The requested relative path. */
  path: string;
  size: number;
  /** Computed from the blob when null (legacy uploads, gzip-encoded whole files). */
  fingerprint: string | null;
  metadata: Record<string, unknown> | null;
  replace: boolean;
  /** The session it completes, kept in the file index; null for a whole-file upload. */
  sessionId: string | null;
}

export interface PlacedFile {
  /** The path it is stored at (the legacy API may pick a unique name). */
  path: string;
  /** The index entry of the stored file: the existing one when it was indexed, else a new one. */
  record: FileRecord;
  /** True when the same content was already stored there and nothing was moved (the blob is still in the temp area). */
  deduplicated: boolean;
  /** True when `record` came from the index (nothing to write there). */
  indexed: boolean;
}

/**
 * The one commit step of every upload (session complete, legacy finalize, whole-file PUT), once
 * the whole file's digest is verified: makes the blob visible under
 * `completed/<uploader>/<path>` (atomically and durably, via the storage) and calls `record`
 * to write the store, both under the path's lock, so commits and creates of one path take turns
 * and the index always describes the file on disk. What is already stored at the path decides
 * the outcome:
 * - the same content: nothing is moved, the stored file is the answer (deduplicated);
 * - a different file: the native API refuses with FILE_EXISTS unless `replace`; the legacy API
 *   stores under a unique name (`name.1.ext`) and reports that path.
 * The blob is gone once placed (moved), unless deduplicated; the temp area is the caller's to delete.
 */
export async function placeVerifiedFile(
  context: UploadContext,
  file: VerifiedFile,
  digest: { sha256: string; md5: string | undefined },
  record: (placed: PlacedFile, now: number) => void,
): Promise<PlacedFile> {
  const fingerprint = file.fingerprint ?? (await fingerprintBlob(context, file.tempId, file.blob, file.size));
  return context.pathLocks.run(pathLockKey(file.uploader, file.path), async () => {
    let target = file.path;
    let deduplicated = false;
    let existing: FileRecord | undefined;
    let lookOnDisk = false;
    for (let attempt = 1; ; attempt += 1) {
      // A path the index knows nothing about is normally free: commit at once (without replace,
      // link() refuses an existing file atomically) and look at the disk only if it does. That
      // spares a lookup of the path on every new file; a replace always looks first (to drop an
      // old gzip copy and to recognise the same content).
      const quick = !lookOnDisk && !file.replace && context.store.getFile(file.uploader, target) === undefined;
      const stored = quick ? NOTHING_STORED : await findStoredCopy(context, file.uploader, target);
      lookOnDisk = false;
      if (stored.exists && (await sameContent(context, stored, file.uploader, target, file.size, digest.sha256))) {
        deduplicated = true;
        existing = stored.record;
        break;
      }
      if (stored.exists && !file.replace) {
        if (file.api === 'native') throw fileExists(target);
        if (attempt > MAX_UNIQUE_ATTEMPTS) throw new UploadError('FILE_EXISTS', `Too many files named like ${file.path}`);
        target = uniqueName(file.path, attempt);
        continue;
      }
      try {
        await context.storage.commit(file.tempId, file.blob, file.uploader, target, { replace: file.replace });
        if (stored.exists) await context.storage.removeCompressed(file.uploader, target).catch(() => undefined);
        break;
      } catch (error) {
        if (quick && isUploadError(error, 'FILE_EXISTS')) {
          // Something is there after all (stored by other means, or a folder): look at it, same attempt.
          lookOnDisk = true;
          attempt -= 1;
          continue;
        }
        if (!isUploadError(error, 'FILE_EXISTS') || file.api === 'native' || file.replace) throw error;
        lookOnDisk = true;
      }
    }
    const now = Date.now();
    const placed: PlacedFile = {
      path: target,
      deduplicated,
      indexed: existing !== undefined,
      record: existing ?? {
        uploader: file.uploader,
        path: target,
        size: file.size,
        sha256: digest.sha256,
        md5: digest.md5 ?? null,
        fingerprint,
        completedAt: now,
        metadata: file.metadata,
        compressedSize: null,
        sessionId: file.sessionId,
      },
    };
    record(placed, now);
    return placed;
  });
}

/** The `pathLocks` key of a stored path: creates, commits and whole-file uploads of one path take turns. */
export function pathLockKey(uploader: string, relativePath: string): string {
  return `${uploader}\0${relativePath}`;
}

/**
 * Completes a session of either API: places its verified file (placeVerifiedFile), recording
 * the file in the index and the session's tombstone in one transaction, deletes the temp area,
 * and queues the gzip copy.
 */
export async function commitSessionFile(context: UploadContext, runtime: SessionRuntime, digest: { sha256: string; md5: string | undefined }): Promise<CommitOutcome> {
  const r = runtime.record;
  let result!: CompletionResult;
  let compress = false;
  const file: VerifiedFile = {
    tempId: r.id,
    blob: DATA_BLOB,
    api: r.api,
    uploader: r.uploader,
    path: r.path,
    size: r.size,
    fingerprint: r.fingerprint,
    metadata: r.metadata,
    replace: r.replace,
    sessionId: r.id,
  };
  const placed = await placeVerifiedFile(context, file, digest, (placed, now) => {
    const fileRecord = placed.record;
    compress = r.compress && !placed.deduplicated;
    result = {
      file: completedFileView(fileRecord),
      storedPath: placed.path,
      md5: digest.md5 ?? fileRecord.md5,
      compressedLocation: fileRecord.compressedSize !== null ? context.storage.compressedLocation(r.uploader, placed.path) : null,
      compressionPending: compress,
    };
    context.store.completeSession(r.id, result, { ...fileRecord, md5: fileRecord.md5 ?? digest.md5 ?? null }, now, now + context.config.sessionExpiry * 1000);
    r.state = 'complete';
    r.result = result;
  });
  const target = placed.path;
  runtime.chunks.clear();
  context.runtimes.drop(r.id);
  await context.storage.removeSession(r.id);
  logUploadCompleted(context.log, runtime, target, placed.record.sha256, placed.deduplicated);

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
 * `run1/a.bag` → `run1/a.1.bag` (the legacy API's way of never overwriting another file). A name
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

async function fingerprintBlob(context: UploadContext, tempId: string, blob: string, size: number): Promise<string> {
  const hash = startFingerprint(size);
  for (const [position, length] of fingerprintRanges(size)) {
    for await (const piece of context.storage.readAt(tempId, blob, position, length)) hash.update(piece);
  }
  return finishFingerprint(hash);
}

function fileExists(relativePath: string): UploadError {
  return new UploadError('FILE_EXISTS', `A different file is already stored at ${relativePath}; create the session with "replace": true to replace it`);
}
