import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestWatchdog, type WatchdogExpiry } from '../../agent/engine/stall/request-watchdog.js';

describe('RequestWatchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function make(stalledMs: number, timeoutMs: number): { watchdog: RequestWatchdog; fired: WatchdogExpiry[] } {
    const fired: WatchdogExpiry[] = [];
    const watchdog = new RequestWatchdog({
      stalledMs,
      timeoutMs,
      onExpire: (kind) => fired.push(kind),
      now: () => Date.now(),
    });
    return { watchdog, fired };
  }

  it('fires "stalled" when nothing moved for the stall timeout, even with no events at all', async () => {
    const { fired } = make(1000, 60_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(2);
    expect(fired).toEqual(['stalled']);
  });

  it('restarts the stall clock on every progress', async () => {
    const { watchdog, fired } = make(1000, 60_000);
    for (let i = 0; i < 10; i += 1) {
      await vi.advanceTimersByTimeAsync(900);
      watchdog.progress();
    }
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1001);
    expect(fired).toEqual(['stalled']);
  });

  it('does not count time held by the throttle, and restarts the stall clock after it', async () => {
    const { watchdog, fired } = make(1000, 3000);
    watchdog.hold();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fired).toEqual([]);
    watchdog.release();
    await vi.advanceTimersByTimeAsync(900);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(fired).toEqual(['stalled']);
  });

  it('fires "timeout" when the active time runs out despite progress', async () => {
    const { watchdog, fired } = make(1000, 2500);
    for (let i = 0; i < 4; i += 1) {
      await vi.advanceTimersByTimeAsync(700);
      watchdog.progress();
    }
    expect(fired).toEqual(['timeout']);
  });

  it('stop() disarms it', async () => {
    const { watchdog, fired } = make(100, 100);
    watchdog.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(fired).toEqual([]);
  });
});
