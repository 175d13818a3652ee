import { createHash } from 'node:crypto';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { finishFingerprint, fingerprintRanges, startFingerprint } from '../../common/protocol/fingerprint.js';
import type { FileRecord, SessionApi } from '../sessions/session-record.js';
import { findStoredCopy, type StoredCopy } from './stored-copy.js';
import { uniqueName } from './unique-name.js';
import type { UploadContext } from './upload-context.js';

const MAX_UNIQUE_ATTEMPTS = 1000;
const NOTHING_STORED: StoredCopy = { record: undefined, diskSize: undefined, exists: false };

/** A verified file waiting in its staging upload to be made visible. */
export interface VerifiedFile {
  /** The staging upload: a session's id, or a whole-file upload's. */
  stagingId: string;
  api: SessionApi;
  uploader: string;
  /** The requested relative path. */
  path: string;
  size: number;
  /** Computed from the staged file when null (legacy uploads, gzip-encoded whole files). */
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
  /**
   * True when the same content was already stored there and nothing was committed (the staging
   * upload is still there).
   */
  deduplicated: boolean;
  /** True when `record` came from the index (nothing to write there). */
  indexed: boolean;
}

/**
 * The one commit step of every upload (session complete, legacy finalize, whole-file PUT), once
 * the whole file's digest is verified: makes the staged file visible under
 * `completed/<uploader>/<path>` (atomically and durably, via the storage) and calls `record`
 * to write the store, both under the path's lock, so commits and creates of one path take turns
 * and the index always describes the stored file. What is already stored at the path decides
 * the outcome:
 * - the same content: nothing is moved, the stored file is the answer (deduplicated);
 * - a different file: the native API refuses with FILE_EXISTS unless `replace`; the legacy API
 *   stores under a unique name (`name.1.ext`) and reports that path.
 * The staged file is gone once placed, unless deduplicated; the staging upload is the caller's to abort.
 */
export async function placeVerifiedFile(
  context: UploadContext,
  file: VerifiedFile,
  digest: { sha256: string; md5: string | undefined },
  record: (placed: PlacedFile, now: number) => Promise<void>,
): Promise<PlacedFile> {
  const fingerprint = file.fingerprint ?? (await fingerprintStaged(context, file.stagingId, file.size));
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
      const quick = !lookOnDisk && !file.replace && (await context.store.getFile(file.uploader, target)) === undefined;
      const stored = quick ? NOTHING_STORED : await findStoredCopy(context, file.uploader, target);
      lookOnDisk = false;
      if (stored.exists && (await sameContent(context, stored, file.uploader, target, file.size, digest.sha256))) {
        deduplicated = true;
        existing = stored.record;
        break;
      }
      if (stored.exists && !file.replace) {
        if (file.api === 'native') throw fileExists(target);
        if (attempt > MAX_UNIQUE_ATTEMPTS)
          throw new UploadError('FILE_EXISTS', `Too many files named like ${file.path}`);
        target = uniqueName(file.path, attempt);
        continue;
      }
      try {
        await context.storage.commit(
          file.stagingId,
          { uploader: file.uploader, path: target },
          { size: file.size, replace: file.replace },
        );
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
    await record(placed, now);
    return placed;
  });
}

/** The `pathLocks` key of a stored path: creates, commits and whole-file uploads of one path take turns. */
export function pathLockKey(uploader: string, relativePath: string): string {
  return `${uploader}\0${relativePath}`;
}

/**
 * Whether the stored file is this content. An indexed file is compared by its recorded SHA-256.
 * A file without an index entry (left by a crash between the move and the record, or put
 * there by hand) is hashed when its size matches: rare, and it saves re-sending.
 */
async function sameContent(
  context: UploadContext,
  stored: StoredCopy,
  uploader: string,
  relativePath: string,
  size: number,
  sha256: string,
): Promise<boolean> {
  if (stored.diskSize !== size) return false;
  if (stored.record) return stored.record.sha256 === sha256;
  const hash = createHash('sha256');
  for await (const piece of context.storage.read({ uploader, path: relativePath })) hash.update(piece);
  return hash.digest('hex') === sha256;
}

async function fingerprintStaged(context: UploadContext, stagingId: string, size: number): Promise<string> {
  const hash = startFingerprint(size);
  for (const [position, length] of fingerprintRanges(size)) {
    for await (const piece of context.storage.readStaged(stagingId, position, length)) hash.update(piece);
  }
  return finishFingerprint(hash);
}

function fileExists(relativePath: string): UploadError {
  return new UploadError(
    'FILE_EXISTS',
    `A different file is already stored at ${relativePath}; create the session with "replace": true to replace it`,
  );
}

/** Reports a file verified and stored (or found stored with this content). */
export function emitFileCompleted(
  context: UploadContext,
  api: SessionApi,
  sessionId: string | null,
  placed: PlacedFile,
): void {
  if (!context.events.listens('file-completed')) return;
  const file = placed.record;
  context.events.emit('file-completed', {
    sessionId,
    api,
    uploader: file.uploader,
    path: placed.path,
    size: file.size,
    sha256: file.sha256,
    deduplicated: placed.deduplicated,
    completedAt: new Date(file.completedAt).toISOString(),
  });
}
