import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { SAME_SIGNAL_SECONDS, handleStopSignals } from '../../agent/app/stop-signals.js';
import { captureLogger } from '../helpers/capture-logger.js';

/**
 * The signal stages shared by the program and the ROS node, driven by an emitter standing in for
 * the process (the real process is covered by test/cli/agent-drain.test.ts).
 */
function start(drains = true) {
  const signals = new EventEmitter();
  const { logger } = captureLogger();
  const exits: number[] = [];
  const stops: AbortSignal[] = [];
  let finish: () => void = () => {};
  const handle = handleStopSignals({
    logger,
    signals,
    drains,
    exitNow: (code) => exits.push(code),
    stop: (cut) => {
      stops.push(cut);
      return new Promise<void>((resolve) => (finish = resolve));
    },
  });
  return { signals, exits, stops, handle, finish: () => finish() };
}

describe('SIGINT and SIGTERM', () => {
  it('the first starts the graceful stop once; `stopped` settles when it has finished', async () => {
    const run = start();
    let stopped = false;
    void run.handle.stopped.then(() => (stopped = true));
    run.signals.emit('SIGINT', 'SIGINT');
    expect(run.stops).toHaveLength(1);
    expect(run.stops[0]!.aborted).toBe(false);
    await Promise.resolve();
    expect(stopped).toBe(false);
    run.finish();
    await run.handle.stopped;
    expect(run.exits).toEqual([]);
  });

  it('the second cuts the drain short, the third exits at once with 128 + its number', () => {
    for (const [first, second, third, code] of [
      ['SIGINT', 'SIGTERM', 'SIGINT', 130],
      ['SIGTERM', 'SIGINT', 'SIGTERM', 143],
    ] as const) {
      const run = start();
      run.signals.emit(first, first);
      run.signals.emit(second, second);
      expect(run.stops).toHaveLength(1);
      expect(run.stops[0]!.aborted).toBe(true);
      expect(run.exits).toEqual([]);
      run.signals.emit(third, third);
      expect(run.exits).toEqual([code]);
    }
  });

  it(`the same signal repeated within ${SAME_SIGNAL_SECONDS} s is one request (terminal and npm both send it)`, () => {
    const run = start();
    run.signals.emit('SIGINT', 'SIGINT');
    run.signals.emit('SIGINT', 'SIGINT');
    expect(run.stops).toHaveLength(1);
    expect(run.stops[0]!.aborted).toBe(false);
    expect(run.exits).toEqual([]);
  });

  it('without a drain (the upload command) the second exits at once', () => {
    const run = start(false);
    run.signals.emit('SIGTERM', 'SIGTERM');
    run.signals.emit('SIGINT', 'SIGINT');
    expect(run.exits).toEqual([130]);
  });

  it('dispose() stops listening', () => {
    const run = start();
    run.handle.dispose();
    expect(run.signals.listenerCount('SIGINT')).toBe(0);
    expect(run.signals.listenerCount('SIGTERM')).toBe(0);
  });
});
