import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir, trackChild } from '../support/cleanup.js';
import { CountingProxy, type ByteEvent } from '../support/counting-proxy.js';
import { writeRandomFile } from '../support/data.js';
import { startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, MiB } from '../support/units.js';

const LIMITS = [1 * MiB, 8 * MiB];
const FULL_SECONDS = 20;
const QUICK_SECONDS = 5;
const UPLOADS = 2;

interface LimitRun {
  limit: number;
  seconds: number;
  wire: WindowFigures;
  payload: WindowFigures;
  /** Bytes per whole second of the window (wire). */
  perSecond: number[];
}

interface WindowFigures {
  /** Mean rate over the window, bytes/s. */
  mean: number;
  /** (mean - limit) / limit, in %. */
  errorPct: number;
  /** Largest number of bytes in any 1-s sliding window, / limit. */
  maxWindowRatio: number;
}

/**
 * The bandwidth limit with 2 concurrent uploads, 1 MiB/s then 8 MiB/s, measured on the wire by
 * a counting TCP proxy between the agent and the server.
 */
export const throttle: Benchmark = {
  name: 'throttle',
  summary:
    'bandwidth limits of 1 and 8 MiB/s with 2 concurrent uploads, ' +
    'measured on the wire (mean error, largest 1-s window)',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const seconds = args.duration ?? (args.quick ? QUICK_SECONDS : FULL_SECONDS);
    const dir = await makeTempDir('throttle');
    try {
      // Each file must outlast the window: the uploads share the limit, so each gets about half.
      const fileSize = Math.ceil((Math.max(...LIMITS) * (seconds + 10)) / UPLOADS / MiB) * MiB;
      const files = Array.from({ length: UPLOADS }, (_, i) => path.join(dir, 'data', `upload_${i}.bin`));
      for (const file of files) await writeRandomFile(file, fileSize);
      say(
        `${UPLOADS} concurrent uploads of ${formatBytes(fileSize)} (random), ${seconds} s per ` +
          `limit (${args.quick ? 'quick' : 'full'}), 8 MiB chunks, through a counting TCP proxy`,
      );
      say(
        'counted: "wire" = TCP payload from the agent (HTTP request lines, headers and bodies; ' +
          'not IP/TCP headers); "payload" = chunk body bytes only (what the limit applies to)',
      );
      const hogs = args.cpuHog ? startCpuHogs() : [];
      if (args.cpuHog) say(`CPU hog: ${hogs.length} busy-looping processes keep every core busy while measuring`);
      const runs: LimitRun[] = [];
      for (const limit of LIMITS) {
        const run = await measureLimit(dir, files, limit, seconds).catch((error: unknown) => {
          for (const hog of hogs) hog.kill('SIGKILL');
          throw error;
        });
        if (limit === LIMITS.at(-1)) for (const hog of hogs) hog.kill('SIGKILL');
        runs.push(run);
        say(
          `limit ${formatBytes(limit)}/s: wire mean ${formatBytes(run.wire.mean)}/s (error ` +
            `${signed(run.wire.errorPct)} %), largest 1-s window ${run.wire.maxWindowRatio.toFixed(3)} × ` +
            `limit; payload error ${signed(run.payload.errorPct)} %, largest window ` +
            `${run.payload.maxWindowRatio.toFixed(3)}`,
        );
        say(`  per second (wire, × limit): ${run.perSecond.map((bytes) => (bytes / limit).toFixed(3)).join(' ')}`);
      }
      const worstError = Math.max(...runs.map((r) => Math.abs(r.wire.errorPct)));
      const worstWindow = Math.max(...runs.map((r) => r.wire.maxWindowRatio));
      const figures: Record<string, unknown> = {
        seconds_per_limit: seconds,
        uploads: UPLOADS,
        file_size_bytes: fileSize,
        counted: 'wire = TCP payload from the agent (HTTP heads and bodies); payload = chunk bodies',
      };
      figures.cpu_hog = args.cpuHog;
      const row: Record<string, string> = {
        'Seconds per limit': args.cpuHog ? `${seconds} (next to a CPU hog)` : String(seconds),
      };
      for (const run of runs) {
        const key = `${run.limit / MiB}mib`;
        figures[`error_pct_${key}`] = fig(run.wire.errorPct, 2);
        figures[`max_window_ratio_${key}`] = fig(run.wire.maxWindowRatio, 3);
        figures[`payload_error_pct_${key}`] = fig(run.payload.errorPct, 2);
        figures[`payload_max_window_ratio_${key}`] = fig(run.payload.maxWindowRatio, 3);
        figures[`mean_bytes_per_s_${key}`] = Math.round(run.wire.mean);
        row[`${run.limit / MiB} MiB/s: error %`] = signed(run.wire.errorPct);
        row[`${run.limit / MiB} MiB/s: largest 1-s window`] = run.wire.maxWindowRatio.toFixed(3);
      }
      figures.worst_abs_error_pct = fig(worstError, 2);
      figures.worst_max_window_ratio = fig(worstWindow, 3);
      return {
        figures,
        targets: {
          worst_abs_error_pct: { value: worstError, op: '<=', limit: 3, unit: '%' },
          worst_max_window_ratio: { value: worstWindow, op: '<=', limit: 1.2 },
        },
        row,
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};

async function measureLimit(dir: string, files: string[], limit: number, seconds: number): Promise<LimitRun> {
  const tag = `${limit / MiB}mib`;
  const server = await startServerProgram(path.join(dir, `server-${tag}`), ['--no-rate-limit'], { reportDir: dir });
  const proxy = await CountingProxy.start(server.port);
  proxy.recordEvents = true;
  try {
    const agent = startAgentUpload(
      files,
      proxy.url,
      path.join(dir, `state-${tag}`),
      ['--bandwidth-limit', String(limit), '--max-concurrent-uploads', String(UPLOADS), '--no-transfer-compression'],
      {
        reportDir: dir,
      },
    );
    // The window starts with the first chunk byte on the wire.
    const deadline = Date.now() + 60_000;
    while (proxy.payloadUp === 0) {
      if (Date.now() > deadline || agent.child.exitCode !== null)
        throw new Error(`no chunk reached the proxy: ${agent.stderr().slice(-2000)}`);
      await sleep(5);
    }
    const first = proxy.events.find((event) => event.payload > 0)!;
    const end = first.t + seconds * 1000;
    await sleep(Math.max(0, end - performance.now()) + 200);
    if (agent.child.exitCode !== null)
      throw new Error(
        `the agent ended before the window did (exit ${agent.child.exitCode}): ${agent.stderr().slice(-2000)}`,
      );
    await agent.kill('SIGKILL');
    if (proxy.warnings.length > 0) throw new Error(proxy.warnings.join('; '));
    const window = proxy.events.filter((event) => event.t >= first.t && event.t < end);
    const perSecond = Array.from({ length: seconds }, (_, s) =>
      sum(
        window.filter((e) => e.t >= first.t + s * 1000 && e.t < first.t + (s + 1) * 1000),
        'wire',
      ),
    );
    return {
      limit,
      seconds,
      wire: figuresOf(window, 'wire', limit, seconds),
      payload: figuresOf(window, 'payload', limit, seconds),
      perSecond,
    };
  } finally {
    await proxy.close();
    await server.stop();
  }
}

function figuresOf(events: ByteEvent[], field: 'wire' | 'payload', limit: number, seconds: number): WindowFigures {
  const mean = sum(events, field) / seconds;
  return {
    mean,
    errorPct: ((mean - limit) / limit) * 100,
    maxWindowRatio: maxSlidingWindow(events, field, 1000) / limit,
  };
}

/** The most bytes in any interval [t, t + widthMs) that starts at an event. */
function maxSlidingWindow(events: ByteEvent[], field: 'wire' | 'payload', widthMs: number): number {
  let best = 0;
  let total = 0;
  let tail = 0;
  for (let head = 0; head < events.length; head += 1) {
    total += events[head]![field];
    while (events[head]!.t - events[tail]!.t >= widthMs) {
      total -= events[tail]![field];
      tail += 1;
    }
    if (total > best) best = total;
  }
  return best;
}

function sum(events: ByteEvent[], field: 'wire' | 'payload'): number {
  let total = 0;
  for (const event of events) total += event[field];
  return total;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

/** One busy-looping process per core (the throttle under CPU starvation). */
function startCpuHogs(): ChildProcess[] {
  return cpus().map(() => {
    // Busy, but it looks every 200 ms whether the benchmark still runs (it ends with it, even after kill -9).
    const loop = `const parent = process.ppid; for (;;) { const t = Date.now(); while (Date.now() - t < 200); \
try { process.kill(parent, 0); } catch { process.exit(0); } }`;
    const hog = spawn(process.execPath, ['-e', loop], { stdio: 'ignore' });
    trackChild(hog);
    return hog;
  });
}
