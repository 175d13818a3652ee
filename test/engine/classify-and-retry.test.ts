import { describe, expect, it } from 'vitest';
import { UploadError } from '../../common/errors/upload-error.js';
import { classifyFailure, isNetworkDown } from '../../agent/engine/retry/classify-failure.js';
import { retryRequest, type RetryInfo } from '../../agent/engine/retry/retry-request.js';
import { httpStatusError, networkError, parseRetryAfter } from '../../agent/engine/transport/http-errors.js';

const http = (status: number, code?: string, retryAfter?: string): UploadError =>
  httpStatusError(
    'f.bin: chunk 1',
    status,
    code ? { success: false, error: `server says ${code}`, code } : undefined,
    retryAfter,
  );

describe('classifyFailure', () => {
  it.each([
    [networkError('x', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), 'retry'],
    [new UploadError('STALLED', 'x'), 'retry'],
    [new UploadError('TIMEOUT', 'x'), 'retry'],
    [http(500, 'INTERNAL'), 'retry'],
    [http(502), 'retry'],
    [http(507, 'INSUFFICIENT_STORAGE'), 'retry'],
    [http(408), 'retry'],
    [http(422, 'CHUNK_CHECKSUM_MISMATCH'), 'retry'],
    [http(409, 'SESSION_BUSY'), 'retry'],
    [http(429, 'RATE_LIMITED', '3'), 'wait'],
    [http(503, 'SERVER_UNAVAILABLE', '1'), 'wait'],
    // A refusal that one damaged byte of a valid request can cause: retried a few times, then meant.
    [http(400, 'INVALID_PATH'), 'suspect'],
    [http(400, 'CHUNK_INDEX_OUT_OF_RANGE'), 'suspect'],
    [http(400, 'REQUEST_CHECKSUM_MISMATCH'), 'suspect'],
    [http(401, 'UNAUTHORIZED'), 'suspect'],
    [http(404), 'suspect'],
    [http(404, 'FILE_NOT_FOUND'), 'suspect'],
    [http(409, 'FILE_EXISTS'), 'permanent'],
    [http(413, 'FILE_TOO_LARGE'), 'permanent'],
    [http(415, 'UNSUPPORTED_MEDIA_TYPE'), 'permanent'],
    [http(404, 'SESSION_NOT_FOUND'), 'restart'],
    [new UploadError('ANSWER_MISMATCH', 'x'), 'retry'],
    [new UploadError('STATE_DISK_FULL', 'x'), 'blocked'],
    [new UploadError('TLS_CERTIFICATE', 'x'), 'blocked'],
    [new UploadError('FILE_CHANGED', 'x'), 'restart'],
    [http(409, 'CHUNKS_MISSING'), 'repair'],
    [http(422, 'FILE_CHECKSUM_MISMATCH'), 'repair'],
    [new UploadError('STOPPED', 'x'), 'stop'],
    [new UploadError('LOCAL_FILE_NOT_FOUND', 'x'), 'permanent'],
    [new TypeError('bug'), 'permanent'],
  ] as const)('%s → %s', (error, kind) => {
    expect(classifyFailure(error)).toBe(kind);
  });

  it('keeps the server message and code, and reads Retry-After', () => {
    const error = http(429, 'RATE_LIMITED', '7');
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.message).toContain('f.bin: chunk 1');
    expect(error.message).toContain('server says RATE_LIMITED');
    expect(error.details).toMatchObject({ status: 429, retryAfter: 7 });
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3);
    expect(isNetworkDown(new UploadError('STALLED', 'x'))).toBe(true);
    expect(isNetworkDown(http(500))).toBe(false);
  });
});

describe('retryRequest', () => {
  const hooks = (maxRetries: number, log: RetryInfo[], waits: { n: number }) => ({
    maxRetries,
    minDelayMs: 2,
    maxDelayMs: 10,
    signal: new AbortController().signal,
    beforeWait: () => (waits.n += 1),
    onRetry: (info: RetryInfo) => log.push(info),
  });

  it('retries a retryable failure up to maxRetries, then throws it; gives the slot back before each wait', async () => {
    const log: RetryInfo[] = [];
    const waits = { n: 0 };
    let calls = 0;
    await expect(
      retryRequest(
        async () => {
          calls += 1;
          throw new UploadError('NETWORK', 'down');
        },
        hooks(3, log, waits),
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(4);
    expect(log.map((entry) => entry.attempt)).toEqual([2, 3, 4]);
    expect(waits.n).toBe(3);
    for (const entry of log) expect(entry.delay).toBeGreaterThan(0);
  });

  it('429 waits do not use up attempts', async () => {
    const log: RetryInfo[] = [];
    let calls = 0;
    const value = await retryRequest(
      async () => {
        calls += 1;
        if (calls <= 3) throw http(429, 'RATE_LIMITED', '0.01');
        return 'ok';
      },
      hooks(0, log, { n: 0 }),
    );
    expect(value).toBe('ok');
    expect(log).toHaveLength(3);
    expect(log.every((entry) => !entry.consumesAttempt && entry.delay === 0.01)).toBe(true);
  });

  it('permanent failures are thrown at once', async () => {
    let calls = 0;
    await expect(
      retryRequest(
        async () => {
          calls += 1;
          throw http(409, 'FILE_EXISTS');
        },
        hooks(5, [], { n: 0 }),
      ),
    ).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    expect(calls).toBe(1);
  });

  it('a 400/401/404 or REQUEST_CHECKSUM_MISMATCH is retried at most 3 times, within maxRetries', async () => {
    for (const failure of [
      http(400, 'INVALID_PATH'),
      http(401, 'UNAUTHORIZED'),
      http(404),
      http(400, 'REQUEST_CHECKSUM_MISMATCH'),
    ]) {
      const log: RetryInfo[] = [];
      let calls = 0;
      await expect(
        retryRequest(
          async () => {
            calls += 1;
            throw failure;
          },
          hooks(10, log, { n: 0 }),
        ),
      ).rejects.toBe(failure);
      expect(calls).toBe(4);
      expect(log.every((entry) => entry.consumesAttempt)).toBe(true);
    }
    // maxRetries bounds them too.
    let calls = 0;
    await expect(
      retryRequest(
        async () => {
          calls += 1;
          throw http(400, 'REQUEST_CHECKSUM_MISMATCH');
        },
        hooks(1, [], { n: 0 }),
      ),
    ).rejects.toMatchObject({ code: 'REQUEST_CHECKSUM_MISMATCH' });
    expect(calls).toBe(2);
    // A damaged request that goes through the second time succeeds.
    calls = 0;
    const value = await retryRequest(
      async () => {
        calls += 1;
        if (calls === 1) throw http(400, 'REQUEST_CHECKSUM_MISMATCH');
        return 'ok';
      },
      hooks(5, [], { n: 0 }),
    );
    expect(value).toBe('ok');
  });

  it('a failure the caller handles itself is thrown at once', async () => {
    let calls = 0;
    await expect(
      retryRequest(
        async () => {
          calls += 1;
          throw http(404, 'ROUTE_NOT_FOUND');
        },
        { ...hooks(5, [], { n: 0 }), handledByCaller: (error) => (error as UploadError).details?.status === 404 },
      ),
    ).rejects.toMatchObject({ code: 'ROUTE_NOT_FOUND' });
    expect(calls).toBe(1);
  });

  it('a stop aborts the wait with its reason', async () => {
    const controller = new AbortController();
    const pending = retryRequest(
      async () => {
        throw new UploadError('NETWORK', 'down');
      },
      {
        maxRetries: 5,
        minDelayMs: 10_000,
        maxDelayMs: 10_000,
        signal: controller.signal,
        beforeWait: () => undefined,
        onRetry: () => undefined,
      },
    );
    setTimeout(() => controller.abort(new UploadError('STOPPED', 'stopping')), 20);
    await expect(pending).rejects.toMatchObject({ code: 'STOPPED' });
  });
});
