import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { RecordingProxy } from './support/recording-proxy.js';
import { runAgent, spawnAgent } from './support/spawn-agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One sample's value from a Prometheus text exposition (`name{labels}`), or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('the agent program with --metrics-listen', { timeout: 180_000 }, () => {
  it('serves what it sent, its queue and the recording-to-verified latency; status shows them too', async () => {
    const dir = await createTempDir('agent-metrics');
    cleanups.push(() => dir.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const proxy = await RecordingProxy.start(server.url);
    cleanups.push(() => proxy.close());
    const root = path.join(dir.path, 'recordings');
    const bag = path.join(root, 'drive');
    mkdirSync(bag, { recursive: true });
    // Splits closed two minutes ago (their mtime): the latency counts from there, not from the upload.
    const files: Record<string, Buffer> = {
      'drive/drive_0.mcap': syntheticMcap(700 * 1024),
      'drive/drive_1.mcap': syntheticMcap(3000),
      'drive/metadata.yaml': Buffer.from(
        'rosbag2_bagfile_information:\n  version: 5\n  relative_file_paths:\n    - drive_0.mcap\n    - drive_1.mcap\n',
      ),
    };
    const closed = new Date(Date.now() - 120_000);
    for (const [remote, bytes] of Object.entries(files)) {
      writeFileSync(path.join(root, remote), bytes);
      utimesSync(path.join(root, remote), closed, closed);
    }
    const total = Object.values(files).reduce((sum, bytes) => sum + bytes.length, 0);
    const state = path.join(dir.path, 'state');

    const agent = spawnAgent([
      'watch',
      root,
      '--server-url',
      proxy.url,
      '--state-dir',
      state,
      '--quiet-period',
      '0.2',
      '--chunk-size',
      '256KiB',
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    cleanups.push(async () => {
      agent.kill('SIGKILL');
      await agent.exited;
    });
    const url = await waitFor(
      () => /Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(agent.stdout + agent.stderr)?.[1],
      'the agent to log its metrics address',
      60_000,
    );
    await waitFor(() => proxy.completionsFor().length === 3, 'the three files on the server', 120_000);

    // The metrics settle once the agent has recorded the last completion.
    const text = await waitFor(async () => {
      const body = await (await fetch(url)).text();
      return sample(body, 'ros2_upload_agent_files_completed_total{deduplicated="false"}') === 3 ? body : undefined;
    }, 'three completions in the metrics');
    expect(sample(text, 'ros2_upload_agent_sent_bytes_total')).toBe(total);
    expect(proxy.chunkBytesFor()).toBe(total);
    expect(sample(text, 'ros2_upload_agent_recording_to_verified_seconds_count')).toBe(3);
    const latencySum = sample(text, 'ros2_upload_agent_recording_to_verified_seconds_sum') ?? 0;
    expect(latencySum).toBeGreaterThanOrEqual(3 * 119);
    expect(latencySum).toBeLessThan(3 * 600);
    // Every split waited two minutes: none falls in the one-minute bucket, all in the five-minute one.
    expect(sample(text, 'ros2_upload_agent_recording_to_verified_seconds_bucket{le="60"}')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_recording_to_verified_seconds_bucket{le="300"}')).toBe(3);
    expect(sample(text, 'ros2_upload_agent_queue_files{state="queued"}')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_queue_files{state="uploading"}')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_pending_bytes')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_oldest_pending_seconds')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_online')).toBe(1);
    expect(sample(text, 'ros2_upload_agent_bandwidth_limit_bytes_per_second')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_retries_total')).toBe(0);
    expect(sample(text, 'ros2_upload_agent_stalls_total')).toBe(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);

    // `status` (read from the journal, while the agent runs) shows the same latency.
    const status = await runAgent(['status', '--state-dir', state]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/Queued: 0/);
    expect(status.stdout).toMatch(/Recording to verified: last 2\.\d min, longest of the last 3 2\.\d min/);
    expect(status.stdout).toMatch(/drive\/drive_0\.mcap +\(closed → verified 2\.\d min\)/);

    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });

  it('refuses a --metrics-listen that is no HOST:PORT before it starts, naming the option', async () => {
    const dir = await createTempDir('agent-metrics-bad');
    cleanups.push(() => dir.remove());
    const result = await runAgent([
      'watch',
      dir.path,
      '--server-url',
      'http://127.0.0.1:9',
      '--state-dir',
      path.join(dir.path, 'state'),
      '--metrics-listen',
      '9465',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).toMatch(/metricsListen \(--metrics-listen, UPLOAD_AGENT_METRICS_LISTEN\)/);
  });
});
