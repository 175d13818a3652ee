import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../agent/engine/throttle/token-bucket.js';

/** Drives consumers that take slices back to back, on a fake clock. */
async function drain(
  bucket: TokenBucket,
  consumers: number,
  seconds: number,
): Promise<{ total: number; perConsumer: number[]; windows: number[] }> {
  const perConsumer = new Array<number>(consumers).fill(0);
  const windows: number[] = [];
  let running = true;
  const start = Date.now();
  const loops = perConsumer.map(async (_, index) => {
    while (running) {
      const size = bucket.sliceSize();
      await bucket.take(size);
      if (!running) break;
      perConsumer[index]! += size;
      const second = Math.floor((Date.now() - start) / 1000);
      windows[second] = (windows[second] ?? 0) + size;
    }
  });
  await vi.advanceTimersByTimeAsync(seconds * 1000);
  running = false;
  bucket.setRate(0); // releases waiters
  await Promise.all(loops);
  return { total: perConsumer.reduce((a, b) => a + b, 0), perConsumer, windows: windows.slice(0, seconds) };
}

describe('TokenBucket', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('grants at once when unlimited', async () => {
    const bucket = new TokenBucket(0, () => Date.now());
    await expect(bucket.take(10 * 1024 * 1024)).resolves.toBeUndefined();
    expect(bucket.sliceSize()).toBeGreaterThan(0);
  });

  it('keeps two consumers together at the limit, shared fairly, in small slices', async () => {
    const rate = 1024 * 1024;
    const bucket = new TokenBucket(rate, () => Date.now());
    expect(bucket.sliceSize()).toBeLessThanOrEqual(64 * 1024);
    const { total, perConsumer, windows } = await drain(bucket, 2, 10);
    const mean = total / 10;
    expect(Math.abs(mean - rate) / rate).toBeLessThan(0.03);
    for (const window of windows) expect(window).toBeLessThanOrEqual(rate * 1.2);
    expect(Math.abs(perConsumer[0]! - perConsumer[1]!) / total).toBeLessThan(0.05);
  });

  it('keeps the tokens of a short CPU starvation while in use, but starts an idle bucket without a burst', () => {
    const rate = 1024 * 1024;
    let now = 0;
    const bucket = new TokenBucket(rate, () => now);
    const slice = bucket.sliceSize();
    /** Bytes granted at once (without waiting) from now on. */
    const grantedAtOnce = (): number => {
      let granted = 0;
      for (;;) {
        void bucket.take(slice).catch(() => undefined);
        if (bucket.waiting > 0) break;
        granted += slice;
      }
      return granted;
    };
    grantedAtOnce(); // the start: at most the small burst
    bucket.close(new Error('reset waiters'));
    // The process got no CPU for 120 ms while uploading: those 120 ms of tokens are granted when it runs again.
    now += 120;
    const afterStall = grantedAtOnce();
    expect(afterStall).toBeGreaterThanOrEqual(rate * 0.11);
    expect(afterStall).toBeLessThanOrEqual(rate * 0.15 + 2 * slice);
    bucket.close(new Error('reset waiters'));
    // Idle for two seconds (no demand): it starts again with the small burst only.
    now += 2000;
    expect(grantedAtOnce()).toBeLessThanOrEqual(rate * 0.05 + 2 * slice);
  });

  it('applies a new rate to callers already waiting', async () => {
    const bucket = new TokenBucket(1000, () => Date.now());
    await bucket.take(bucket.capacity); // empty the burst
    let granted = false;
    const pending = bucket.take(100_000).then(() => {
      granted = true;
    });
    await vi.advanceTimersByTimeAsync(500);
    expect(granted).toBe(false);
    bucket.setRate(10 * 1024 * 1024);
    await vi.advanceTimersByTimeAsync(100);
    expect(granted).toBe(true);
    await pending;
  });

  it('lowering the rate slows consumers down within a second', async () => {
    const bucket = new TokenBucket(4 * 1024 * 1024, () => Date.now());
    let taken = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const size = bucket.sliceSize();
        await bucket.take(size);
        taken += size;
      }
    })();
    await vi.advanceTimersByTimeAsync(1000);
    bucket.setRate(256 * 1024);
    await vi.advanceTimersByTimeAsync(1000); // settle
    const before = taken;
    await vi.advanceTimersByTimeAsync(2000);
    const rate = (taken - before) / 2;
    expect(rate).toBeLessThanOrEqual(256 * 1024 * 1.05);
    expect(rate).toBeGreaterThan(256 * 1024 * 0.9);
    running = false;
    bucket.setRate(0);
    await loop;
  });

  it('an aborted wait rejects with the reason and is not charged', async () => {
    const bucket = new TokenBucket(1000, () => Date.now());
    await bucket.take(bucket.capacity);
    const controller = new AbortController();
    const waiting = bucket.take(50_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(bucket.waiting).toBe(0);
  });
});
