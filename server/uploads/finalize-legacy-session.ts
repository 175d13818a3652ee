import { UploadError } from '../../common/errors/upload-error.js';
import { hexDigest, optionalString, requireObject } from '../http/fields.js';
import { finishHashPump } from '../integrity/hash-pump.js';
import type { CompletionResult } from '../sessions/session-record.js';
import type { SessionRuntime } from '../sessions/session-runtime.js';
import { commitSessionFile } from './commit-file.js';
import { missingError } from './missing-chunks.js';
import { dropSessionWithLostData } from './session-data-lost.js';
import { DATA_BLOB, type UploadContext } from './upload-context.js';

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
 * POST /upload/finalize (the legacy API): `{upload_id, checksum?}`. Which chunks are held is
 * checked (not only how many), the in-order appends and hashes are finished (normally only the
 * tail is left), the MD5 given here or at init is compared (a mismatch is 400 and the session
 * stays open, so the client can re-send chunks), and the file committed. A gzip copy, when asked
 * for, is waited for at most compressionWait; it then finishes in the background.
 */
export async function finalizeLegacySession(context: UploadContext, runtime: SessionRuntime, input: unknown): Promise<LegacyFinalizeAnswer> {
  const body = requireObject(input);
  const given = optionalString(body, 'checksum');
  const md5 = given === undefined || given === '' ? undefined : hexDigest('checksum (MD5)', given, 32);
  const { record } = runtime;
  let result: CompletionResult;
  if (record.state === 'complete' && record.result) {
    result = record.result;
  } else {
    runtime.completion ??= finalize(context, runtime, md5).finally(() => {
      runtime.completion = undefined;
    });
    result = await runtime.completion;
  }
  if (md5 !== undefined && result.md5 !== md5) {
    throw new UploadError('FILE_CHECKSUM_MISMATCH', `This upload was already finalized with MD5 ${result.md5}, not ${md5}`);
  }
  return answerOf(context, runtime, result);
}

async function finalize(context: UploadContext, runtime: SessionRuntime, md5: string | undefined): Promise<CompletionResult> {
  const { record } = runtime;
  const missing = runtime.missingIndexes();
  if (missing.length > 0) throw missingError('CHUNKS_MISSING', `Cannot finalize ${record.path}: ${missing.length} of ${record.chunkCount} chunks missing`, missing);
  const received = runtime.receivedBytes();
  if (received !== record.size) {
    throw new UploadError('CHUNK_SIZE_MISMATCH', `The chunks of ${record.path} add up to ${received} bytes, but filesize is ${record.size}; re-send the wrong chunks`);
  }
  const dataSize = await context.storage.blobSize(record.id, DATA_BLOB);
  // Expired during that look (nothing ends a session once the state is 'completing', just below).
  if (runtime.ended) throw new UploadError('INVALID_FIELD', `upload_id ${JSON.stringify(record.id)} is not a known upload any more (it expired)`);
  if (dataSize === undefined) throw await dropSessionWithLostData(context, runtime);
  record.state = 'completing';
  context.store.setState(record.id, 'completing', Date.now());
  try {
    await finishHashPump(context, runtime);
    await context.storage.truncate(record.id, DATA_BLOB, record.size);
    const digest = runtime.hash.digest();
    const expected = md5 ?? record.md5Expected ?? undefined;
    if (expected !== undefined && digest.md5 !== expected) {
      throw new UploadError(
        'FILE_CHECKSUM_MISMATCH',
        `MD5 mismatch for ${record.path}: the received file has ${digest.md5}, the client gave ${expected}; the upload stays open, re-send the chunks and finalize again`,
      );
    }
    const outcome = await commitSessionFile(context, runtime, { sha256: digest.sha256, md5: digest.md5 });
    if (outcome.compression) {
      await Promise.race([outcome.compression, new Promise((resolve) => setTimeout(resolve, context.config.compressionWait * 1000).unref())]);
    }
    return outcome.result;
  } finally {
    if (record.state === 'completing') {
      record.state = 'open';
      context.store.setState(record.id, 'open', Date.now());
    }
  }
}

function answerOf(context: UploadContext, runtime: SessionRuntime, result: CompletionResult): LegacyFinalizeAnswer {
  const { record } = runtime;
  return {
    success: true,
    message: `Upload complete: ${result.storedPath}`,
    upload_id: record.id,
    file_path: context.storage.completedLocation(record.uploader, result.storedPath),
    compressed_path: result.compressedLocation,
    checksum: result.md5 ?? '',
    compression_applied: result.compressedLocation !== null,
    compression_pending: result.compressionPending,
    sha256: result.file.sha256,
    size: result.file.size,
  };
}
