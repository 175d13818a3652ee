import { afterEach, describe, expect, it, vi } from 'vitest';
import { SAME_SIGNAL_SECONDS } from '../../agent/app/stop-signals.js';
import { STOP_SECONDS } from '../../agent/ros/index.js';
import { startFakeNode } from './helpers/start-fake-node.js';

/** Waits until `condition` holds, flushing microtasks (no wall-clock waiting). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i += 1) await Promise.resolve();
  expect(condition()).toBe(true);
}

describe('startup and shutdown', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('inits rclnodejs with the full argv, removes its signal handler and creates upload_agent', async () => {
    const run = await startFakeNode({ rosArgs: ['-p', 'bandwidth_limit:=5000'] });
    expect(run.ros.initArgv).toEqual([
      '/usr/bin/node',
      '/opt/agent/dist/agent/cli/main.js',
      'watch',
      '--ros-args',
      '-p',
      'bandwidth_limit:=5000',
    ]);
    expect(run.ros.removeSignalHandlersCount).toBeGreaterThanOrEqual(1);
    expect(run.node.name).toBe('upload_agent');
    expect(run.rosSettings).toEqual({ bandwidthLimit: 5000 });
    expect(run.signals.listenerCount('SIGINT')).toBe(1);
    expect(run.signals.listenerCount('SIGTERM')).toBe(1);
    await run.handle.shutdown();
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} drains and stops the agent, destroys the node and shuts rclnodejs down once, exits 0`, async () => {
      const run = await startFakeNode();
      run.signals.emit(signal, signal);
      await run.handle.closed;
      await until(() => run.exits.length > 0);
      expect(run.exits).toEqual([0]);
      expect(run.agent.calls.drain).toHaveLength(1);
      expect(run.agent.calls.stop).toBe(1);
      expect(run.node.destroyCount).toBe(1);
      expect(run.ros.shutdownCount).toBe(1);
      expect(run.agent.listenerCount).toBe(0);
      expect(run.node.timers.every((timer) => timer.cancelled)).toBe(true);
      expect(run.signals.listenerCount('SIGINT')).toBe(0);
      expect(run.signals.listenerCount('SIGTERM')).toBe(0);
      // Idempotent.
      await run.handle.shutdown();
      expect(run.node.destroyCount).toBe(1);
      expect(run.ros.shutdownCount).toBe(1);
      expect(run.agent.calls.stop).toBe(1);
    });
  }

  it('status keeps flowing while the agent drains; the agent stops and the node goes down after', async () => {
    const run = await startFakeNode();
    let finishDrain: () => void = () => {};
    run.agent.drainWork = () => new Promise<void>((resolve) => (finishDrain = resolve));
    run.signals.emit('SIGTERM', 'SIGTERM');
    await until(() => run.agent.calls.drain.length === 1);
    run.agent.update('a', { state: 'completed' });
    expect(run.node.messages('upload_status')).toHaveLength(1);
    run.node.tick();
    expect(run.node.messages('~/queue').length).toBeGreaterThan(0);
    expect(run.agent.calls.stop).toBe(0);
    expect(run.node.destroyCount).toBe(0);
    finishDrain();
    await run.handle.closed;
    expect(run.agent.calls.stop).toBe(1);
    expect(run.node.destroyCount).toBe(1);
    await until(() => run.exits.length > 0);
    expect(run.exits).toEqual([0]);
  });

  it('a second signal cuts the drain short; the agent still stops and the process exits 0', async () => {
    const run = await startFakeNode();
    run.agent.drainWork = () => new Promise<void>(() => {});
    run.signals.emit('SIGINT', 'SIGINT');
    await until(() => run.agent.calls.drain.length === 1);
    expect(run.agent.calls.drain[0]!.cut?.aborted).toBe(false);
    // What ros2 launch sends once its sigterm_timeout is over.
    run.signals.emit('SIGTERM', 'SIGTERM');
    expect(run.agent.calls.drain[0]!.cut?.aborted).toBe(true);
    await run.handle.closed;
    await until(() => run.exits.length > 0);
    expect(run.exits).toEqual([0]);
    expect(run.agent.calls.stop).toBe(1);
    expect(run.ros.shutdownCount).toBe(1);
    expect(run.warnings().map((line) => line.msg)).toContain('SIGTERM again: skipping the rest of the drain');
  });

  it(`an agent that does not stop within ${STOP_SECONDS} s does not keep the node alive`, async () => {
    vi.useFakeTimers();
    const run = await startFakeNode();
    run.agent.stopWork = () => new Promise<void>(() => {});
    run.signals.emit('SIGINT', 'SIGINT');
    await vi.advanceTimersByTimeAsync(STOP_SECONDS * 1000);
    await run.handle.closed;
    expect(run.ros.shutdownCount).toBe(1);
    expect(run.node.destroyCount).toBe(1);
    expect(run.exits).toEqual([0]);
    expect(run.warnings().map((line) => line.msg)).toContain(
      `the agent did not finish stopping within ${STOP_SECONDS} s; the ROS node goes down anyway`,
    );
  });

  for (const [first, second, code] of [
    ['SIGTERM', 'SIGINT', 130],
    ['SIGINT', 'SIGTERM', 143],
  ] as const) {
    it(`a third signal exits at once with ${code} (${first}, ${second}, ${second}); ROS goes down once`, async () => {
      vi.useFakeTimers();
      const run = await startFakeNode();
      let finishStop: () => void = () => {};
      run.agent.drainWork = () => new Promise<void>(() => {});
      run.agent.stopWork = () => new Promise<void>((resolve) => (finishStop = resolve));
      run.signals.emit(first, first);
      run.signals.emit(second, second);
      await vi.advanceTimersByTimeAsync(0);
      expect(run.agent.calls.stop).toBe(1);
      expect(run.exits).toEqual([]);
      // A repeat of the same signal counts as a new one only after SAME_SIGNAL_SECONDS.
      await vi.advanceTimersByTimeAsync(SAME_SIGNAL_SECONDS * 1000 + 1);
      run.signals.emit(second, second);
      expect(run.exits).toEqual([code]);
      expect(run.ros.shutdownCount).toBe(1);
      expect(run.node.destroyCount).toBe(1);
      finishStop();
      await run.handle.closed;
      expect(run.ros.shutdownCount).toBe(1);
      expect(run.node.destroyCount).toBe(1);
    });
  }

  it('a failing agent.stop() is logged, and ROS still goes down once', async () => {
    const run = await startFakeNode();
    run.agent.stopWork = async () => {
      throw new Error('journal locked');
    };
    run.signals.emit('SIGTERM', 'SIGTERM');
    await run.handle.closed;
    await until(() => run.exits.length > 0);
    expect(run.ros.shutdownCount).toBe(1);
    // The failure is logged; shutdown itself completed, so the exit code is 0.
    expect(run.exits).toEqual([0]);
    expect(run.lines.some((line) => line.msg === 'the agent failed to stop cleanly')).toBe(true);
  });

  it('handle.shutdown({ drain: false }) stops without draining', async () => {
    const run = await startFakeNode();
    await run.handle.shutdown({ drain: false });
    expect(run.agent.calls.drain).toHaveLength(0);
    expect(run.agent.calls.stop).toBe(1);
    expect(run.ros.shutdownCount).toBe(1);
    expect(run.signals.listenerCount('SIGINT')).toBe(0);
  });
});
