import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, median } from '../support/data.js';
import { statusKiB } from '../support/proc-usage.js';
import { startAgentUpload, startAgentWatch, startServerProgram, type Line } from '../support/processes.js';
import { fig, formatBytes, KiB } from '../support/units.js';

const FULL_SPLITS = 10_000;
const QUICK_SPLITS = 2_000;
const FULL_BAGS = 50;
const QUICK_BAGS = 10;
const FILE_SIZE = 16 * KiB;
const MCAP_MAGIC = Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);
const VERIFIED_LOG = '"msg":"upload verified by the server"';

/** One program's run over the tree. */
interface Run {
  /** From the program's start to the last file verified. */
  seconds: number;
  /** From the first file verified to the last. */
  steadySeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/**
 * `watch` on a recording root full of closed bags (issue 16: it was quadratic in the number of
 * files per folder) against `upload` of the same bags, each against a fresh server of its own
 * (same program, same settings). Both count from the program's start to the last file verified
 * (the agent's own lines), so the watcher's start-up scan, its closing checks (quiet period, MCAP
 * end magic, one /proc scan per batch) and its hand-over to the engine are all inside the figure.
 */
export const watch: Benchmark = {
  name: 'watch',
  summary: '`watch` of 10,000 closed splits in 50 bags vs `upload` of the same bags: files/s, agent CPU and RSS',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const splits = args.files ?? (args.quick ? QUICK_SPLITS : FULL_SPLITS);
    const bagCount = args.bags ?? (args.quick ? QUICK_BAGS : FULL_BAGS);
    const size = args.fileSize ?? FILE_SIZE;
    const rounds = args.rounds ?? 1;
    const dir = await makeTempDir('watch');
    try {
      const root = path.join(dir, 'recordings');
      const bags = await writeClosedBags(root, splits, bagCount, size);
      const files = splits + bagCount;
      flushDisks();
      say(
        `${splits} closed splits of ${formatBytes(size)} in ${bagCount} bags (+ ${bagCount} metadata.yaml: ` +
          `${files} files), default agent settings, servers without rate limits; ${rounds} round(s)`,
      );
      const uploads: Run[] = [];
      const watches: Run[] = [];
      for (let round = 0; round < rounds; round += 1) {
        uploads.push(await runUpload(path.join(dir, `upload-${round}`), bags, files));
        flushDisks();
        watches.push(await runWatch(path.join(dir, `watch-${round}`), root, files));
        flushDisks();
      }
      const pick = (runs: Run[], key: keyof Run): number => median(runs.map((run) => run[key]));
      const uploadRate = files / pick(uploads, 'seconds');
      const watchRate = files / pick(watches, 'seconds');
      const ratio = watchRate / uploadRate;
      const watchCpuMs = (pick(watches, 'cpuSeconds') / files) * 1000;
      const uploadCpuMs = (pick(uploads, 'cpuSeconds') / files) * 1000;
      const describe = (runs: Run[], rate: number, cpuMs: number): string =>
        `${rate.toFixed(0)} files/s (${pick(runs, 'seconds').toFixed(2)} s from start; ` +
        `${(files / pick(runs, 'steadySeconds')).toFixed(0)} files/s from the first verified file), ` +
        `agent CPU ${cpuMs.toFixed(2)} ms/file, peak RSS ${pick(runs, 'peakRssMiB').toFixed(0)} MiB`;
      say(`upload: ${describe(uploads, uploadRate, uploadCpuMs)}`);
      say(`watch:  ${describe(watches, watchRate, watchCpuMs)}`);
      say(`watch ÷ upload: ${ratio.toFixed(2)}`);
      return {
        figures: {
          splits,
          bags: bagCount,
          files,
          file_size_bytes: size,
          rounds,
          upload_files_per_s: fig(uploadRate, 1),
          watch_files_per_s: fig(watchRate, 1),
          watch_vs_upload: fig(ratio, 3),
          upload_seconds: fig(pick(uploads, 'seconds'), 2),
          watch_seconds: fig(pick(watches, 'seconds'), 2),
          upload_agent_cpu_ms_per_file: fig(uploadCpuMs, 3),
          watch_agent_cpu_ms_per_file: fig(watchCpuMs, 3),
          upload_agent_peak_rss_mib: fig(pick(uploads, 'peakRssMiB'), 1),
          watch_agent_peak_rss_mib: fig(pick(watches, 'peakRssMiB'), 1),
        },
        targets: { watch_vs_upload: { value: ratio, op: '>=', limit: 0.9 } },
        row: {
          Files: `${splits} splits × ${formatBytes(size)} in ${bagCount} bags`,
          'upload files/s': uploadRate.toFixed(0),
          'watch files/s': watchRate.toFixed(0),
          'watch ÷ upload': ratio.toFixed(2),
          'agent CPU ms/file upload / watch': `${uploadCpuMs.toFixed(2)} / ${watchCpuMs.toFixed(2)}`,
          'agent RSS MiB upload / watch': [uploads, watches]
            .map((runs) => pick(runs, 'peakRssMiB').toFixed(0))
            .join(' / '),
        },
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};

/**
 * `bag_NN/bag_NN_<i>.mcap` (a valid MCAP frame: magic, random bytes, magic) and `metadata.yaml`,
 * as a finished recording leaves them.
 */
async function writeClosedBags(root: string, splits: number, bags: number, size: number): Promise<string[]> {
  const folders: string[] = [];
  const width = String(bags - 1).length;
  for (let bag = 0; bag < bags; bag += 1) {
    const name = `bag_${String(bag).padStart(width, '0')}`;
    const folder = path.join(root, name);
    await mkdir(folder, { recursive: true });
    const count = Math.floor(splits / bags) + (bag < splits % bags ? 1 : 0);
    const listed: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const file = `${name}_${index}.mcap`;
      const body = randomBytes(Math.max(0, size - 2 * MCAP_MAGIC.length));
      await writeFile(path.join(folder, file), Buffer.concat([MCAP_MAGIC, body, MCAP_MAGIC]));
      listed.push(`    - ${file}`);
    }
    await writeFile(
      path.join(folder, 'metadata.yaml'),
      'rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: mcap\n' +
        `  relative_file_paths:\n${listed.join('\n')}\n`,
    );
    folders.push(folder);
  }
  return folders;
}

async function runUpload(dir: string, bags: string[], files: number): Promise<Run> {
  const server = await startServerProgram(path.join(dir, 'server'), ['--no-rate-limit'], { reportDir: dir });
  try {
    const agent = startAgentUpload(bags, server.url, path.join(dir, 'state'), [], { reportDir: dir });
    await agent.waitForLine(/^(\d+) of (\d+) file\(s\) verified/, 1_800_000);
    const code = await agent.exited;
    const verified = agent.lines.filter((line) => line.text.startsWith('verified '));
    if (verified.length !== files || code !== 0)
      throw new Error(`upload: ${verified.length} of ${files} verified, exit ${code}: ${agent.stderr().slice(-1000)}`);
    const usage = await agent.usage();
    return {
      seconds: (verified[verified.length - 1]!.t - agent.startedAt) / 1000,
      steadySeconds: (verified[verified.length - 1]!.t - verified[0]!.t) / 1000,
      cpuSeconds: usage ? usage.userSeconds + usage.systemSeconds : Number.NaN,
      peakRssMiB: (await agent.peakRssKiB()) / 1024,
    };
  } finally {
    await server.stop();
  }
}

async function runWatch(dir: string, root: string, files: number): Promise<Run> {
  const server = await startServerProgram(path.join(dir, 'server'), ['--no-rate-limit'], { reportDir: dir });
  try {
    const verified: Line[] = [];
    let done: (() => void) | undefined;
    const allVerified = new Promise<void>((resolve) => {
      done = resolve;
    });
    let cpuAtEnd = Number.NaN;
    let rssAtEnd = 0;
    const agent = startAgentWatch(root, server.url, path.join(dir, 'state'), [], {
      reportDir: dir,
      onStderrLine: (line) => {
        if (!line.text.includes(VERIFIED_LOG)) return;
        verified.push(line);
        if (verified.length === files) {
          // The work is done: read the agent's CPU and peak RSS now, before it is stopped.
          cpuAtEnd = agent.cpuSeconds() ?? Number.NaN;
          rssAtEnd = statusKiB(agent.pid, 'VmHWM') ?? 0;
          done?.();
        }
      },
    });
    const timeout = setTimeout(() => done?.(), 1_800_000);
    await Promise.race([allVerified, agent.exited]);
    clearTimeout(timeout);
    await agent.kill('SIGTERM');
    if (verified.length < files)
      throw new Error(`watch: ${verified.length} of ${files} verified: ${agent.stderr().slice(-1500)}`);
    return {
      seconds: (verified[verified.length - 1]!.t - agent.startedAt) / 1000,
      steadySeconds: (verified[verified.length - 1]!.t - verified[0]!.t) / 1000,
      cpuSeconds: cpuAtEnd,
      peakRssMiB: Math.max(rssAtEnd, await agent.peakRssKiB()) / 1024,
    };
  } finally {
    await server.stop();
  }
}
