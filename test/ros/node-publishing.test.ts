import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DiagnosticArrayMessage, UploadQueueMessage, UploadStatusMessage } from '../../agent/ros/ros-messages.js';
import { QUEUE_QOS, rosNames } from '../../agent/ros/upload-agent-node.js';
import { uploadStatusState } from '../../agent/ros/upload-status-state.js';
import { startFakeNode, type FakeNodeRun } from './helpers/start-fake-node.js';

const STATUS = rosNames.status;
const QUEUE = rosNames.queue;
const DIAGNOSTICS = rosNames.diagnostics;

describe('the node publishes what the agent reports', () => {
  let run: FakeNodeRun;

  beforeEach(async () => {
    vi.useFakeTimers();
    run = await startFakeNode();
  });

  afterEach(async () => {
    await run.handle.shutdown();
    vi.useRealTimers();
  });

  it('creates its topics with the documented names, types and QoS, and spins', () => {
    const { node } = run;
    expect(node.publishers.get(STATUS)?.type).toBe('upload_agent_msgs/msg/UploadStatus');
    expect(node.publishers.get(QUEUE)?.type).toBe('upload_agent_msgs/msg/UploadQueue');
    expect(node.publishers.get(QUEUE)?.qos).toEqual({
      depth: 1,
      reliability: 'reliable',
      durability: 'transient_local',
    });
    expect(QUEUE_QOS.durability).toBe('transient_local');
    expect(node.publishers.get(DIAGNOSTICS)?.type).toBe('diagnostic_msgs/msg/DiagnosticArray');
    expect(STATUS).toBe('upload_status');
    expect(node.timers.map((timer) => timer.period)).toEqual([1_000_000_000n]);
    expect(node.spinning).toBe(true);
    expect(node.fullyQualifiedName).toBe('/upload_agent');
    // The current state goes out at once, for transient-local late joiners.
    expect(node.messages<UploadQueueMessage>(QUEUE)).toHaveLength(1);
  });

  it('publishes a scripted upload: queued, throttled progress, retry, completion and a failure', async () => {
    const { node, agent } = run;
    const statuses = () => node.messages<UploadStatusMessage>(STATUS);

    agent.update('a', { state: 'queued' });
    expect(statuses().at(-1)).toMatchObject({
      upload_id: 'a',
      state: uploadStatusState.queued,
      bytes_sent: 0n,
      bytes_total: 10_000_000n,
      eta: -1,
    });

    agent.update('a', { state: 'uploading', startedAt: '2026-01-01T00:00:01.000Z' });
    expect(statuses()).toHaveLength(2);
    expect(statuses().at(-1)!.state).toBe(uploadStatusState.uploading);

    // Progress within one 500 ms window: nothing more until the window ends, then the latest.
    for (let sent = 1; sent <= 5; sent += 1)
      agent.update('a', { bytesSent: sent * 1_000_000, rate: 2_000_000, etaSeconds: 10 - sent });
    const afterBurst = statuses().length;
    expect(afterBurst).toBeLessThanOrEqual(3);
    await vi.advanceTimersByTimeAsync(500);
    expect(statuses().at(-1)).toMatchObject({
      state: uploadStatusState.uploading,
      bytes_sent: 5_000_000n,
      rate: 2_000_000,
      eta: 5,
    });
    const progressCount = statuses().length;
    expect(progressCount).toBeLessThanOrEqual(afterBurst + 1);

    // A state change goes out at once, even inside the progress window.
    agent.update('a', { bytesSent: 5_500_000 });
    agent.update('a', {
      state: 'retrying',
      attempt: 2,
      lastError: 'connect ECONNREFUSED 127.0.0.1:8080',
      errorCode: 'NETWORK',
    });
    expect(statuses().at(-1)).toMatchObject({
      state: uploadStatusState.retrying,
      attempt: 2,
      last_error: 'connect ECONNREFUSED 127.0.0.1:8080',
      error_code: 'NETWORK',
    });

    agent.update('a', { state: 'uploading', lastError: undefined, errorCode: undefined });
    agent.update('a', {
      state: 'completed',
      bytesSent: 10_000_000,
      sha256: 'ab'.repeat(32),
      finishedAt: '2026-01-01T00:00:09.000Z',
    });
    const completed = statuses().at(-1)!;
    expect(completed).toMatchObject({
      upload_id: 'a',
      state: uploadStatusState.completed,
      bytes_sent: 10_000_000n,
      sha256: 'ab'.repeat(32),
    });
    // No stale progress message after completion.
    await vi.advanceTimersByTimeAsync(2_000);
    expect(statuses().at(-1)).toEqual(completed);

    agent.update('b', { state: 'uploading', localPath: '/data/bags/run1/run1_1.mcap', remotePath: 'run1/run1_1.mcap' });
    agent.update('b', { state: 'failed', lastError: 'server refused the token', errorCode: 'UNAUTHORIZED' });
    expect(statuses().at(-1)).toMatchObject({
      upload_id: 'b',
      state: uploadStatusState.failed,
      local_path: '/data/bags/run1/run1_1.mcap',
      remote_path: 'run1/run1_1.mcap',
      bag_name: 'run1',
    });

    // The order of states per file, as published.
    const statesOfA = statuses()
      .filter((m) => m.upload_id === 'a')
      .map((m) => m.state);
    expect(statesOfA.filter((state, index) => state !== statesOfA[index - 1])).toEqual([
      uploadStatusState.queued,
      uploadStatusState.uploading,
      uploadStatusState.retrying,
      uploadStatusState.uploading,
      uploadStatusState.completed,
    ]);
    // Stamps come from the node clock.
    expect(statuses().every((m) => m.stamp.sec > 0)).toBe(true);
  });

  it('never publishes progress of one file more often than twice a second', async () => {
    const { node, agent } = run;
    agent.update('c', { state: 'uploading' });
    const times: number[] = [];
    const publisher = node.publishers.get(STATUS)!;
    const before = publisher.messages.length;
    for (let step = 0; step < 100; step += 1) {
      agent.update('c', { bytesSent: step * 10_000 });
      if (publisher.messages.length > before + times.length) times.push(Date.now());
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(times.length).toBeGreaterThan(5);
    for (let i = 1; i < times.length; i += 1) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(500);
  });

  it('publishes ~/queue on change and every second, with counts, limits and the pending uploads', async () => {
    const { node, agent } = run;
    const queue = () => node.messages<UploadQueueMessage>(QUEUE);
    agent.update('q1', { state: 'queued', priority: 3 });
    agent.update('q2', { state: 'uploading', bytesSent: 4_000_000 });
    agent.update('q3', { state: 'waiting_for_close' });
    agent.update('q4', { state: 'completed', bytesSent: 10_000_000 });
    await vi.advanceTimersByTimeAsync(250);
    const latest = queue().at(-1)!;
    expect(latest).toMatchObject({
      online: true,
      paused: false,
      bandwidth_limit: 0n,
      queued_count: 1,
      uploading_count: 1,
      waiting_for_close_count: 1,
      completed_count: 1,
      failed_count: 0,
      bytes_pending: 26_000_000n,
      free_disk_bytes: 40_000_000_000n,
      low_disk: false,
    });
    // Active first, then queued, then waiting; finished ones are not listed.
    expect(latest.uploads.map((u) => u.upload_id)).toEqual(['q2', 'q1', 'q3']);

    const count = queue().length;
    node.tick();
    expect(queue()).toHaveLength(count + 1);

    agent.freeDiskBytes = undefined;
    node.tick();
    expect(queue().at(-1)!.free_disk_bytes).toBe(-1n);
  });

  it('publishes /diagnostics at 1 Hz: OK, WARN when retrying, offline or low on disk, ERROR when files failed', () => {
    const { node, agent } = run;
    const latest = () => node.messages<DiagnosticArrayMessage>(DIAGNOSTICS).at(-1)!.status[0]!;
    node.tick();
    expect(latest()).toMatchObject({ level: 0, name: 'upload_agent: uploads' });
    expect(typeof latest().level).toBe('number');
    const keys = latest().values.map((kv) => kv.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'online',
        'paused',
        'bandwidth_limit',
        'bytes_pending',
        'free_disk_bytes',
        'low_disk',
        'queued_count',
        'failed_count',
      ]),
    );

    agent.update('r', { state: 'retrying', lastError: 'timeout', errorCode: 'TIMEOUT' });
    node.tick();
    expect(latest().level).toBe(1);
    expect(latest().message).toContain('1 retrying');
    expect(latest().values).toContainEqual({ key: 'retrying: run1/r.mcap', value: 'timeout' });

    agent.update('r', { state: 'uploading' });
    agent.online = false;
    node.tick();
    expect(latest().level).toBe(1);
    expect(latest().message).toContain('offline');

    agent.online = true;
    agent.lowDisk = true;
    agent.freeDiskBytes = 1_000_000;
    node.tick();
    expect(latest().level).toBe(1);
    expect(latest().message).toContain('low disk');

    agent.lowDisk = false;
    agent.update('f', { state: 'failed', lastError: 'file vanished', errorCode: 'LOCAL_FILE_NOT_FOUND' });
    node.tick();
    expect(latest().level).toBe(2);
    expect(latest().message).toContain('1 failed');
    expect(latest().values).toContainEqual({ key: 'failed: run1/f.mcap', value: 'file vanished' });

    agent.update('f', { state: 'completed', lastError: undefined });
    // A retry that needs an operator (a refused token) is an ERROR, not a WARN.
    agent.update('r', { state: 'retrying', lastError: 'token refused', errorCode: 'UNAUTHORIZED' });
    node.tick();
    expect(latest().level).toBe(2);
    expect(latest().message).toContain('UNAUTHORIZED');
  });

  it('a failing status read is logged once per topic and never escapes into the executor', () => {
    const { node, agent, lines } = run;
    const healthy = agent.status.bind(agent);
    agent.status = () => {
      throw new Error('journal busy');
    };
    expect(() => node.tick()).not.toThrow();
    expect(() => node.tick()).not.toThrow();
    const errors = lines.filter((line) => line.level === 50).map((line) => line.msg);
    expect(errors).toEqual([`publishing on ${QUEUE} failed`, `publishing on ${DIAGNOSTICS} failed`]);
    agent.status = healthy;
    const before = node.messages(QUEUE).length;
    node.tick();
    expect(node.messages(QUEUE)).toHaveLength(before + 1);
  });

  it('a namespaced node names its diagnostics by its fully qualified name', async () => {
    await run.handle.shutdown();
    run = await startFakeNode({ rosArgs: ['-r', '__ns:=/robot7', '-r', '__node:=uploader'] });
    expect(run.node.fullyQualifiedName).toBe('/robot7/uploader');
    run.node.tick();
    expect(run.node.messages<DiagnosticArrayMessage>(DIAGNOSTICS).at(-1)!.status[0]!.name).toBe(
      'robot7/uploader: uploads',
    );
  });
});
