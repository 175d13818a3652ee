import { UploadError } from '../../common/errors/upload-error.js';
import { finishHashPump } from '../runtime/hash-pump.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { CompletionResult } from '../sessions/session-record.js';
import { completedKey } from '../storage/stored-file-layout.js';
import { sessionEventOf } from './cancel-session.js';
import { completeSession, type CompletionRules, type FileDigest } from './complete-session.js';
import type { UploadContext } from './upload-context.js';

export interface LegacyFinalizeAnswer {
  success: true;
  message: string;
  upload_id: string;
  /** Relative to the storage root, e.g. `completed/anonymous/test.bag`; never an absolute path. */
  file_path: string;
  compressed_path: string | null;
  /** MD5 (hex) of the stored file, as the Python dashboard reported. */
  checksum: string;
  compression_applied: boolean;
  /** True while the gzip copy is still being made in the background. */
  compression_pending: boolean;
  sha256: string;
  size: number;
}

/**
 * POST /upload/finalize with the MD5 given there (or at init): the shared completion path with
 * the legacy rules. The in-order placing and hashing are finished (normally only the tail is
 * left) and the MD5 compared: a mismatch is 400 and the session stays open, so the client can
 * re-send chunks. A gzip copy, when asked for, is waited for at most compressionWait; it then
 * finishes in the background.
 */
export async function finalizeLegacySession(
  context: UploadContext,
  runtime: SessionRuntime,
  md5: string | undefined,
): Promise<LegacyFinalizeAnswer> {
  const result = await completeSession(context, runtime, legacyRules(md5));
  if (md5 !== undefined && result.md5 !== md5) {
    throw new UploadError(
      'FILE_CHECKSUM_MISMATCH',
      `This upload was already finalized with MD5 ${result.md5}, not ${md5}`,
    );
  }
  return answerOf(runtime, result);
}

function legacyRules(md5: string | undefined): CompletionRules {
  return {
    verb: 'finalize',
    ended: (runtime) =>
      new UploadError(
        'INVALID_FIELD',
        `upload_id ${JSON.stringify(runtime.record.id)} is not a known upload any more (it expired)`,
      ),
    verify: async (context, runtime): Promise<FileDigest> => {
      const { record } = runtime;
      await finishHashPump(context, runtime);
      const digest = await runtime.hash.digest();
      const expected = md5 ?? record.md5Expected ?? undefined;
      if (expected !== undefined && digest.md5 !== expected) {
        const message =
          `MD5 mismatch for ${record.path}: the received file has ${digest.md5}, the client ` +
          `gave ${expected}; the upload stays open, re-send the chunks and finalize again`;
        context.events.emit('session-failed', {
          ...sessionEventOf(runtime),
          code: 'FILE_CHECKSUM_MISMATCH',
          message,
          ended: false,
        });
        throw new UploadError('FILE_CHECKSUM_MISMATCH', message);
      }
      return { sha256: digest.sha256, md5: digest.md5 };
    },
    settle: async (context, outcome) => {
      if (!outcome.compression) return;
      await Promise.race([
        outcome.compression,
        new Promise((resolve) => setTimeout(resolve, context.config.compressionWait * 1000).unref()),
      ]);
    },
  };
}

function answerOf(runtime: SessionRuntime, result: CompletionResult): LegacyFinalizeAnswer {
  const { record } = runtime;
  return {
    success: true,
    message: `Upload complete: ${result.storedPath}`,
    upload_id: record.id,
    file_path: completedKey({ uploader: record.uploader, path: result.storedPath }),
    compressed_path: result.compressedLocation,
    checksum: result.md5 ?? '',
    compression_applied: result.compressedLocation !== null,
    compression_pending: result.compressionPending,
    sha256: result.file.sha256,
    size: result.file.size,
  };
}
