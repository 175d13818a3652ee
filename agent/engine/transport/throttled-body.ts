import type { TokenBucket } from '../throttle/token-bucket.js';
import type { RequestWatchdog } from '../stall/request-watchdog.js';

/**
 * Streams a chunk's wire bytes into the request in small slices, each released by the shared
 * token bucket: this is where a chunk is throttled. Slices are views of the chunk buffer (no
 * copies). Time spent waiting for tokens is excluded from the watchdog's clocks. `onBytes`
 * reports each slice as it is handed to the connection.
 */
export async function* throttledBody(
  data: Buffer,
  bucket: TokenBucket,
  watchdog: RequestWatchdog,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  while (offset < data.length) {
    signal.throwIfAborted();
    const size = Math.min(bucket.sliceSize(), data.length - offset);
    if (bucket.rate > 0) {
      watchdog.hold();
      try {
        await bucket.take(size, signal);
      } finally {
        watchdog.release();
      }
    }
    const piece = data.subarray(offset, offset + size);
    offset += size;
    watchdog.progress();
    onBytes(size);
    yield piece;
  }
}
