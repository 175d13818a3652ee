import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import type { CompleteResponse } from '../../common/protocol/native-protocol.js';
import { hexDigest, requiredString, requireObject } from '../http/fields.js';
import { recheckChunks } from '../integrity/crc-recheck.js';
import { finishHashPump } from '../integrity/hash-pump.js';
import type { CompletionResult } from '../sessions/session-record.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { commitSessionFile } from './commit-file.js';
import { missingError } from './missing-chunks.js';
import { dropSessionWithLostData } from './session-data-lost.js';
import { DATA_BLOB, type UploadContext } from './upload-context.js';

/**
 * POST /v1/sessions/:id/complete. Every chunk must be held; the prefix hash is finished (for a
 * file sent in order only the digest is left), compared with the client's SHA-256, and the file
 * committed. On a mismatch the held chunks are re-checked against their CRCs: the failing ones
 * are dropped and named, or, when all pass, the session is reset (the client's file is not what
 * it sent). Completing again after success gives the same answer; concurrent completes share one.
 */
export async function completeNativeSession(context: UploadContext, runtime: SessionRuntime, input: unknown): Promise<CompleteResponse> {
  const sha256 = hexDigest('sha256', requiredString(requireObject(input), 'sha256'), 64);
  const result = await completion(context, runtime, sha256);
  if (result.file.sha256 !== sha256) {
    throw new UploadError('FILE_CHECKSUM_MISMATCH', `This session already completed with sha256 ${result.file.sha256}, not ${sha256}`, { details: { missing: [] } });
  }
  return result.file;
}

function completion(context: UploadContext, runtime: SessionRuntime, sha256: string): Promise<CompletionResult> {
  const { record } = runtime;
  if (record.state === 'complete' && record.result) return Promise.resolve(record.result);
  runtime.completion ??= complete(context, runtime, sha256).finally(() => {
    runtime.completion = undefined;
  });
  return runtime.completion;
}

async function complete(context: UploadContext, runtime: SessionRuntime, sha256: string): Promise<CompletionResult> {
  const { record } = runtime;
  const missing = runtime.missingIndexes();
  if (missing.length > 0) throw missingError('CHUNKS_MISSING', `Cannot complete ${record.path}: ${missing.length} of ${record.chunkCount} chunks missing`, missing);
  // The SHA-256 was computed as the chunks landed: make sure what they landed in is still there.
  const dataSize = await context.storage.blobSize(record.id, DATA_BLOB);
  // Cancelled during that look (it is refused only once the state is 'completing', just below).
  if (runtime.ended) throw new UploadError('SESSION_NOT_FOUND', `The session for ${record.path} was cancelled or expired`);
  if (dataSize === undefined) throw await dropSessionWithLostData(context, runtime);
  setState(runtime, 'completing');
  try {
    let digest: string | undefined;
    try {
      await finishHashPump(context, runtime);
      digest = runtime.hash.digest().sha256;
    } catch (error) {
      if (isUploadError(error, 'CHUNKS_MISSING')) throw error;
      context.log.warn({ event: 'complete_rehash_failed', sessionId: record.id, err: error }, `Could not hash ${record.path}; re-checking its chunks`);
    }
    if (digest !== sha256) await refuseMismatch(context, runtime, sha256, digest);
    const { result } = await commitSessionFile(context, runtime, { sha256, md5: undefined });
    return result;
  } finally {
    if (record.state === 'completing') setState(runtime, 'open');
  }
}

async function refuseMismatch(context: UploadContext, runtime: SessionRuntime, expected: string, actual: string | undefined): Promise<never> {
  const { record } = runtime;
  const failed = await recheckChunks(context, runtime);
  const dropped = failed.length > 0 ? failed : runtime.receivedIndexes();
  context.store.deleteChunks(record.id, dropped);
  for (const index of dropped) runtime.chunks.delete(index);
  runtime.hash.reset();
  runtime.loggedDecile = 0;
  context.log.warn(
    { event: 'file_checksum_mismatch', sessionId: record.id, path: record.path, expected, actual, dropped: dropped.length, reset: failed.length === 0 },
    `SHA-256 of ${record.path} does not match the client's; ${failed.length > 0 ? `${failed.length} damaged chunks dropped` : 'every chunk passes its CRC, so the session is reset'}`,
  );
  const reason =
    failed.length > 0
      ? `The file's SHA-256 does not match (${actual ?? 'unreadable'}, expected ${expected}); these chunks were damaged on the server and must be sent again`
      : `The file's SHA-256 does not match (${actual ?? 'unreadable'}, expected ${expected}) although every chunk passed its checksum: the file differs from what was sent, so every chunk must be sent again`;
  throw missingError('FILE_CHECKSUM_MISMATCH', reason, dropped);
}

/**
 * `completing` lives in memory only: after a crash such a session is open again anyway (see
 * startup-recovery.ts), so writing it to the store would cost two commits per completion for
 * nothing.
 */
function setState(runtime: SessionRuntime, state: 'open' | 'completing'): void {
  runtime.record.state = state;
}
