import pRetry from 'p-retry';
import { SUSPECT_RETRIES, classifyFailure, describeFailure, retryAfterSeconds } from './classify-failure.js';

export interface RetryInfo {
  /** The number of the next attempt (2 = first retry). */
  attempt: number;
  /** Seconds until it. */
  delay: number;
  reason: string;
  error: unknown;
  /** False for 429/503 waits, which do not use up an attempt. */
  consumesAttempt: boolean;
}

export interface RetryHooks {
  maxRetries: number;
  /** First backoff (ms); doubles per retry up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Aborts waiting between attempts (stop, cancel). */
  signal: AbortSignal;
  /**
   * Called (and awaited, when it returns a promise) before any wait: the caller gives its
   * concurrency slot back (never sleep holding one) and lets go of its chunk buffers (memory is
   * bounded by the slots, not by the uploads that wait).
   */
  beforeWait: () => unknown;
  onRetry: (info: RetryInfo) => void;
  /** Failures this caller handles itself, never retried here (a whole-file PUT's 404 means "use a session"). */
  handledByCaller?: (error: unknown) => boolean;
}

/**
 * Runs one request with retries, via p-retry: exponential backoff from `minDelayMs`, doubling,
 * capped at `maxDelayMs`, with jitter (each delay is drawn from [d/2, d), half of it slept by
 * p-retry and a random part by us, so the reported delay is the real one). 429/503 wait for
 * their Retry-After (or the current backoff when they give none) without using an attempt.
 * A `suspect` refusal (one that a byte damaged on the way can cause) is retried like a `retry`
 * failure, but at most SUSPECT_RETRIES times per request; then it is thrown as meant. Other
 * failures (see classify-failure.ts) are thrown at once, as is the last failure when the retries
 * are used up.
 */
export async function retryRequest<T>(operation: (attempt: number) => Promise<T>, hooks: RetryHooks): Promise<T> {
  const minTimeout = Math.max(0, hooks.minDelayMs / 2);
  const maxTimeout = Math.max(minTimeout, hooks.maxDelayMs / 2);
  const pRetryDelay = (retriesConsumed: number): number =>
    Math.min(Math.round(minTimeout * 2 ** retriesConsumed), maxTimeout);
  let result: { value: T } | undefined;
  let suspects = 0;
  const retriable = (error: unknown, retriesConsumed: number): boolean => {
    if (hooks.handledByCaller?.(error)) return false;
    const kind = classifyFailure(error);
    if (kind === 'suspect') return suspects <= SUSPECT_RETRIES && retriesConsumed < hooks.maxRetries;
    return kind === 'retry' && retriesConsumed < hooks.maxRetries;
  };
  try {
    return await pRetry(
      async (attempt: number) => {
        const value = await operation(attempt);
        result = { value };
        return value;
      },
      {
        retries: Number.POSITIVE_INFINITY,
        factor: 2,
        minTimeout,
        maxTimeout,
        randomize: false,
        signal: hooks.signal,
        shouldConsumeRetry: ({ error }) => classifyFailure(error) !== 'wait',
        shouldRetry: ({ error, retriesConsumed }) =>
          classifyFailure(error) === 'wait' || retriable(error, retriesConsumed),
        onFailedAttempt: async ({ error, attemptNumber, retriesConsumed }) => {
          const kind = classifyFailure(error);
          if (kind === 'suspect') suspects += 1;
          if (kind === 'wait') {
            const seconds = retryAfterSeconds(error) ?? (2 * pRetryDelay(retriesConsumed)) / 1000;
            await hooks.beforeWait();
            hooks.onRetry({
              attempt: attemptNumber + 1,
              delay: seconds,
              reason: describeFailure(error),
              error,
              consumesAttempt: false,
            });
            await sleep(seconds * 1000, hooks.signal);
            return;
          }
          if (!retriable(error, retriesConsumed)) return;
          const base = pRetryDelay(retriesConsumed);
          const jitter = Math.random() * base;
          await hooks.beforeWait();
          hooks.onRetry({
            attempt: attemptNumber + 1,
            delay: (base + jitter) / 1000,
            reason: describeFailure(error),
            error,
            consumesAttempt: true,
          });
          await sleep(jitter, hooks.signal);
        },
      },
    );
  } catch (error) {
    // p-retry re-checks the signal after a success; a success that raced a stop still counts.
    if (result) return result.value;
    throw error;
  }
}

/** setTimeout as a promise that rejects with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
