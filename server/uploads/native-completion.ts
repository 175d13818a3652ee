import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import type { CompletedFile } from '../../common/protocol/native-protocol.js';
import { finishHashPump, saveResetPrefix } from '../runtime/hash-pump.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import { sessionEventOf } from './cancel-session.js';
import { completeSession, type CompletionRules, type FileDigest } from './complete-session.js';
import { recheckChunks } from './crc-recheck.js';
import { missingError } from './missing-chunks.js';
import type { UploadContext } from './upload-context.js';

/**
 * POST /v1/sessions/:id/complete with the client's SHA-256: the shared completion path with the
 * native rules. The prefix hash is finished (for a file sent in order only the digest is left)
 * and compared. On a mismatch the held chunks are re-checked against their CRCs: the failing
 * ones are dropped and named, or, when all pass, the session is reset (the client's file is not
 * what it sent). A session completed earlier with another SHA-256 is a mismatch too.
 */
export async function completeNativeSession(
  context: UploadContext,
  runtime: SessionRuntime,
  sha256: string,
): Promise<CompletedFile> {
  const result = await completeSession(context, runtime, nativeRules(sha256));
  if (result.file.sha256 !== sha256) {
    throw new UploadError(
      'FILE_CHECKSUM_MISMATCH',
      `This session already completed with sha256 ${result.file.sha256}, not ${sha256}`,
      { details: { missing: [] } },
    );
  }
  return result.file;
}

function nativeRules(sha256: string): CompletionRules {
  return {
    verb: 'complete',
    ended: (runtime) =>
      new UploadError('SESSION_NOT_FOUND', `The session for ${runtime.record.path} was cancelled or expired`),
    verify: async (context, runtime): Promise<FileDigest> => {
      let digest: string | undefined;
      try {
        await finishHashPump(context, runtime);
        digest = (await runtime.hash.digest()).sha256;
      } catch (error) {
        if (isUploadError(error, 'CHUNKS_MISSING')) throw error;
        context.log.warn(
          { event: 'complete_rehash_failed', sessionId: runtime.id, err: error },
          `Could not hash ${runtime.record.path}; re-checking its chunks`,
        );
      }
      if (digest !== sha256) await refuseMismatch(context, runtime, sha256, digest);
      return { sha256, md5: undefined };
    },
  };
}

async function refuseMismatch(
  context: UploadContext,
  runtime: SessionRuntime,
  expected: string,
  actual: string | undefined,
): Promise<never> {
  const { record } = runtime;
  const failed = await recheckChunks(context, runtime);
  const dropped = failed.length > 0 ? failed : runtime.receivedIndexes();
  await context.store.deleteChunks(record.id, dropped);
  for (const index of dropped) runtime.chunks.delete(index);
  runtime.hash.reset();
  await saveResetPrefix(context, runtime);
  runtime.loggedDecile = 0;
  const outcome =
    failed.length > 0
      ? `${failed.length} damaged chunks dropped`
      : 'every chunk passes its CRC, so the session is reset';
  context.log.warn(
    {
      event: 'file_checksum_mismatch',
      sessionId: record.id,
      path: record.path,
      expected,
      actual,
      dropped: dropped.length,
      reset: failed.length === 0,
    },
    `SHA-256 of ${record.path} does not match the client's; ${outcome}`,
  );
  const reason =
    failed.length > 0
      ? `The file's SHA-256 does not match (${actual ?? 'unreadable'}, expected ` +
        `${expected}); these chunks were damaged on the server and must be sent again`
      : `The file's SHA-256 does not match (${actual ?? 'unreadable'}, expected ${expected}) although every ` +
        `chunk passed its checksum: the file differs from what was sent, so every chunk must be sent again`;
  const error = missingError('FILE_CHECKSUM_MISMATCH', reason, dropped);
  context.events.emit('session-failed', {
    ...sessionEventOf(runtime),
    code: error.code,
    message: error.message,
    ended: false,
  });
  throw error;
}
