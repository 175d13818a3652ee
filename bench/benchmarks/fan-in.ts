import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FleetSpec } from '../children/fleet.js';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, writeRandomFile } from '../support/data.js';
import { spawnNode, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, MiB, mibPerSecond } from '../support/units.js';

const FULL_UPLOADERS = 50;
const FULL_SIZE = 20 * MiB;
const QUICK_SIZE = 8 * MiB;
const SERVER_RSS_BOUND_MIB = 150;
const FLEET = fileURLToPath(new URL('../children/fleet.ts', import.meta.url));

/**
 * Many robots, one server: N upload engines (each its own token, journal and connections) in
 * one child process, the server (default settings: rate limits on, one token per robot) in
 * another. Errors are failed uploads plus retried requests (a 429 or a dropped request would
 * show as a retry).
 */
export const fanIn: Benchmark = {
  name: 'fan-in',
  summary: '50 concurrent uploaders of 20 MiB each against one server: aggregate MiB/s, errors, server peak RSS',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const uploaders = args.uploaders ?? FULL_UPLOADERS;
    const size = args.size ?? (args.quick ? QUICK_SIZE : FULL_SIZE);
    const dir = await makeTempDir('fan-in');
    try {
      const spec: FleetSpec = { serverUrl: '', uploads: [] };
      const tokens: string[] = [];
      for (let i = 0; i < uploaders; i += 1) {
        const robot = `robot-${String(i).padStart(2, '0')}`;
        const token = randomBytes(32).toString('hex');
        tokens.push(`${robot}=${token}`);
        const file = path.join(dir, 'data', robot, 'recording.bin');
        await writeRandomFile(file, size);
        spec.uploads.push({ file, remotePath: 'run1/recording.bin', token, stateDir: path.join(dir, 'state', robot) });
      }
      flushDisks();
      say(
        `${uploaders} uploaders × ${formatBytes(size)} (random; ${args.quick ? 'quick' : 'full'}), ` +
          `8 MiB chunks, one token per uploader, server with default settings (rate limits on)`,
      );
      const server = await startServerProgram(path.join(dir, 'server'), [], {
        reportDir: dir,
        env: { UPLOAD_SERVER_TOKENS: tokens.join(',') },
      });
      try {
        const idleRss = server.peakRssKiB() / 1024;
        spec.serverUrl = server.url;
        const specFile = path.join(dir, 'fleet.json');
        await writeFile(specFile, JSON.stringify(spec));
        const serverCpuBefore = server.handle.cpuSeconds() ?? 0;
        const fleet = spawnNode('fleet', FLEET, [specFile], { tsx: true, reportDir: dir });
        const start = await fleet.waitForLine(/^start$/, 60_000);
        const outcome = await fleet.waitForLine(/^\{.*\}$/, 600_000);
        await fleet.exited;
        const result = JSON.parse(outcome.text) as {
          completed: number;
          failed: number;
          retries: number;
          reasons: Record<string, number>;
          failures: string[];
        };
        const seconds = (outcome.t - start.t) / 1000;
        const total = uploaders * size;
        const rate = mibPerSecond(total, outcome.t - start.t);
        const serverPeak = server.peakRssKiB() / 1024;
        const serverCpu = (server.handle.cpuSeconds() ?? 0) - serverCpuBefore;
        const fleetPeak = (await fleet.peakRssKiB()) / 1024;
        const errors = result.failed + result.retries + (uploaders - result.completed - result.failed);
        say(
          `${result.completed} of ${uploaders} verified in ${seconds.toFixed(2)} s: ${rate.toFixed(0)} ` +
            `MiB/s aggregate; ${result.failed} failed, ${result.retries} retried requests`,
        );
        for (const [reason, count] of Object.entries(result.reasons)) say(`  retried ${count} ×: ${reason}`);
        for (const failure of result.failures) say(`  failed: ${failure}`);
        say(
          `server peak RSS ${serverPeak.toFixed(0)} MiB (idle after start ` +
            `${idleRss.toFixed(0)} MiB), server CPU ${serverCpu.toFixed(2)} s; ` +
            `the ${uploaders} engines' process peaked at ${fleetPeak.toFixed(0)} MiB`,
        );
        return {
          figures: {
            uploaders,
            size_bytes_each: size,
            seconds: fig(seconds, 2),
            aggregate_mibps: fig(rate, 1),
            completed: result.completed,
            failed: result.failed,
            retries: result.retries,
            errors,
            server_peak_rss_mib: fig(serverPeak, 1),
            server_idle_rss_mib: fig(idleRss, 1),
            server_cpu_s: fig(serverCpu, 2),
            uploaders_process_peak_rss_mib: fig(fleetPeak, 1),
          },
          targets: {
            errors: { value: errors, op: '<=', limit: 0 },
            server_peak_rss_mib: { value: serverPeak, op: '<=', limit: SERVER_RSS_BOUND_MIB, unit: 'MiB' },
          },
          row: {
            Uploaders: `${uploaders} × ${formatBytes(size)}`,
            'Aggregate MiB/s': rate.toFixed(0),
            Errors: `${errors} (${result.failed} failed, ${result.retries} retries)`,
            'Server RSS MiB': serverPeak.toFixed(0),
          },
        };
      } finally {
        await server.stop();
      }
    } finally {
      await removeTempDir(dir);
    }
  },
};
