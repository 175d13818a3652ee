import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { CompletionResult } from '../sessions/session-record.js';
import { compressedKey } from '../storage/stored-file-layout.js';
import { emitFileCompleted, placeVerifiedFile, type VerifiedFile } from './commit-file.js';
import { completedFileView } from './session-views.js';
import type { UploadContext } from './upload-context.js';
import { logUploadCompleted } from './upload-log.js';

export interface CommitOutcome {
  result: CompletionResult;
  /** The gzip copy at rest, when one was asked for: resolves with its size, or undefined when not kept. */
  compression: Promise<number | undefined> | undefined;
}

/**
 * Completes a session of either API: places its verified file (placeVerifiedFile), recording
 * the file in the index and the session's tombstone together, aborts what is left of the
 * staging upload, reports the file completed and queues the gzip copy.
 */
export async function commitSessionFile(
  context: UploadContext,
  runtime: SessionRuntime,
  digest: { sha256: string; md5: string | undefined },
): Promise<CommitOutcome> {
  const r = runtime.record;
  let result!: CompletionResult;
  let compress = false;
  const file: VerifiedFile = {
    stagingId: r.id,
    api: r.api,
    uploader: r.uploader,
    path: r.path,
    size: r.size,
    fingerprint: r.fingerprint,
    metadata: r.metadata,
    replace: r.replace,
    sessionId: r.id,
  };
  const placed = await placeVerifiedFile(context, file, digest, async (placed, now) => {
    const fileRecord = placed.record;
    compress = r.compress && !placed.deduplicated;
    result = {
      file: completedFileView(fileRecord),
      storedPath: placed.path,
      md5: digest.md5 ?? fileRecord.md5,
      compressedLocation:
        fileRecord.compressedSize !== null ? compressedKey({ uploader: r.uploader, path: placed.path }) : null,
      compressionPending: compress,
    };
    await context.store.completeSession(
      r.id,
      result,
      { ...fileRecord, md5: fileRecord.md5 ?? digest.md5 ?? null },
      now,
      now + context.config.sessionExpiry * 1000,
    );
    r.state = 'complete';
    r.result = result;
  });
  const target = placed.path;
  runtime.chunks.clear();
  context.runtimes.drop(r.id);
  await context.storage.abortStaging(r.id);
  logUploadCompleted(context.log, runtime, target, placed.record.sha256, placed.deduplicated);
  emitFileCompleted(context, r.api, r.id, placed);

  let compression: Promise<number | undefined> | undefined;
  if (compress) {
    compression = context.gzip.enqueue({ uploader: r.uploader, path: target, size: r.size }).then((size) => {
      result.compressionPending = false;
      if (size !== undefined) {
        result.compressedLocation = compressedKey({ uploader: r.uploader, path: target });
        result.file.compressedSize = size;
      }
      return context.store.setResult(r.id, result).then(
        () => size,
        (error: unknown) => {
          // The store is closed when the server shuts down during a compression; the copy is kept.
          context.log.warn(
            { event: 'compression_unrecorded', sessionId: r.id, err: error },
            `Could not record the gzip copy of ${target}`,
          );
          return size;
        },
      );
    });
  }
  return { result, compression };
}
