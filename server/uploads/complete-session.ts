import { UploadError } from '../../common/errors/upload-error.js';
import type { SessionRuntime } from '../runtime/session-runtime.js';
import type { CompletionResult } from '../sessions/session-record.js';
import { commitSessionFile, type CommitOutcome } from './commit-session.js';
import { missingError } from './missing-chunks.js';
import { dropSessionWithLostData } from './session-data-lost.js';
import type { UploadContext } from './upload-context.js';

/** The whole file's digests, verified, as recorded with it. */
export interface FileDigest {
  sha256: string;
  /** The legacy API's MD5; undefined for native uploads. */
  md5: string | undefined;
}

/** What differs between the two APIs' completions: how they name it, verify, and what they wait for. */
export interface CompletionRules {
  /** The operation's name in messages: 'complete' or 'finalize'. */
  readonly verb: string;
  /** The error when the session ended (cancelled, expired) while it was looked at. */
  ended(runtime: SessionRuntime): UploadError;
  /**
   * Finishes the file's digest and checks it against what the client gave, throwing what the
   * client must hear when it differs (and repairing the session as the API promises).
   */
  verify(context: UploadContext, runtime: SessionRuntime): Promise<FileDigest>;
  /** After the commit, before the answer (the legacy API waits a little for its gzip copy). */
  settle?(context: UploadContext, outcome: CommitOutcome): Promise<void>;
}

/**
 * The one completion path of both APIs: every chunk held (CHUNKS_MISSING names the missing
 * ones), their sizes adding up to the file, the staged data still there (else the session is
 * dropped), the whole file's digest verified, then committed, indexed and answered
 * (commitSessionFile). Completing again after success gives the same result; concurrent
 * completions share one. While it runs the session is `completing`, in memory only: after a
 * crash such a session is open again anyway (see startup-recovery.ts), so writing the state to
 * the store would cost two commits per completion for nothing.
 */
export function completeSession(
  context: UploadContext,
  runtime: SessionRuntime,
  rules: CompletionRules,
): Promise<CompletionResult> {
  const { record } = runtime;
  if (record.state === 'complete' && record.result) return Promise.resolve(record.result);
  // Server replicas: one completion of a session at a time, whichever replica runs it; a
  // replica that waited finds the session complete and answers with its result.
  runtime.completion ??= context.runtimes
    .exclusive(runtime, async (current) => {
      if (!current) throw rules.ended(runtime);
      if (current.record.state === 'complete' && current.record.result) return current.record.result;
      return complete(context, current, rules);
    })
    .finally(() => {
      runtime.completion = undefined;
    });
  return runtime.completion;
}

async function complete(
  context: UploadContext,
  runtime: SessionRuntime,
  rules: CompletionRules,
): Promise<CompletionResult> {
  const { record } = runtime;
  const missing = runtime.missingIndexes();
  if (missing.length > 0)
    throw missingError(
      'CHUNKS_MISSING',
      `Cannot ${rules.verb} ${record.path}: ${missing.length} of ${record.chunkCount} chunks missing`,
      missing,
    );
  const received = runtime.receivedBytes();
  if (received !== record.size) {
    // Only the legacy API's chunks have sizes of the client's choosing.
    throw new UploadError(
      'CHUNK_SIZE_MISMATCH',
      `The chunks of ${record.path} add up to ${received} bytes, ` +
        `but filesize is ${record.size}; re-send the wrong chunks`,
    );
  }
  // The digest was computed as the chunks landed: make sure what they landed in is still there.
  const staged = await context.storage.hasStaging(record.id);
  // Cancelled or expired during that look (nothing ends a session once it is 'completing', just below).
  if (runtime.ended) throw rules.ended(runtime);
  if (!staged) throw await dropSessionWithLostData(context, runtime);
  record.state = 'completing';
  try {
    const digest = await rules.verify(context, runtime);
    const outcome = await commitSessionFile(context, runtime, digest);
    await rules.settle?.(context, outcome);
    return outcome.result;
  } finally {
    if (record.state === 'completing') record.state = 'open';
  }
}
