import type { TokenBucket } from '../throttle/token-bucket.js';
import type { RequestWatchdog } from '../stall/request-watchdog.js';

/** Bytes at the end of a body sent from a copy when the body's buffer is reused early (see onSent). */
const TAIL_COPY = 64 * 1024;
/**
 * Without a limit, slices start at the bucket's size (256 KiB) and double, up to this, while the
 * connection takes each in less than FAST_SLICE_MS: every slice costs a pass through undici and
 * the socket stream, and with 2 MiB slices on loopback the agent used about 0.3 s less CPU per
 * GiB than with 256 KiB ones (2.04-2.24 against 2.44-2.68 s/GiB, four alternating 256 MiB runs
 * each on a loaded 2-core machine). On a slow link the slices stay small, so the stall clock
 * (fed once per slice) still sees progress often.
 */
const MAX_UNLIMITED_SLICE = 2 * 1024 * 1024;
const FAST_SLICE_MS = 20;

/**
 * Streams a chunk's wire bytes into the request in small slices, each released by the shared
 * token bucket: this is where a chunk is throttled. Slices are views of the chunk buffer (no
 * copies). Time spent waiting for tokens is excluded from the watchdog's clocks. `onBytes`
 * reports each slice as it is handed to the connection.
 *
 * `onSent` is called once the connection took the whole body, from when `data` may be
 * overwritten although the answer is still to come. undici writes each slice and, when the
 * socket does not take it at once (write() returns false, as for any slice above the socket's
 * 16 KiB high-water mark), waits for 'drain' before it asks for the next: so when it asks for
 * the end, only a write that returned true can still be pending, and that is at most 16 KiB of
 * the latest bytes. The last TAIL_COPY bytes therefore go out from a copy of their own.
 */
export async function* throttledBody(
  data: Buffer,
  bucket: TokenBucket,
  watchdog: RequestWatchdog,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
  onSent?: () => void,
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  // Only when the buffer will be reused before the answer: then the tail goes from a copy.
  const tailStart = onSent ? Math.max(0, data.length - TAIL_COPY) : data.length;
  let source = data;
  let unlimitedSlice = bucket.sliceSize();
  while (offset < data.length) {
    if (offset >= tailStart && source === data) source = Buffer.from(data.subarray(offset));
    signal.throwIfAborted();
    // A slice never straddles the start of the copied tail.
    const slice = bucket.rate > 0 ? bucket.sliceSize() : unlimitedSlice;
    const size = Math.min(slice, (offset < tailStart ? tailStart : data.length) - offset);
    if (bucket.rate > 0) {
      watchdog.hold();
      try {
        await bucket.take(size, signal);
      } finally {
        watchdog.release();
      }
    }
    const piece =
      source === data
        ? data.subarray(offset, offset + size)
        : source.subarray(offset - tailStart, offset - tailStart + size);
    offset += size;
    watchdog.progress();
    onBytes(size);
    const handedAt = performance.now();
    yield piece; // resumes once the connection took it (undici waits for 'drain' when it did not at once)
    if (bucket.rate === 0 && size === unlimitedSlice && performance.now() - handedAt < FAST_SLICE_MS)
      unlimitedSlice = Math.min(MAX_UNLIMITED_SLICE, unlimitedSlice * 2);
  }
  onSent?.();
}
