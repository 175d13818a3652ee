import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { flushDisks, median, writeRandomFile, writeSmallFiles } from '../support/data.js';
import { startAgentUpload, startServerProgram } from '../support/processes.js';
import { fig, formatBytes, KiB, MiB, mibPerSecond } from '../support/units.js';

const TOKEN = 'bench-robot-token-0123456789abcdef0123456789abcdef0123456789abcdef';
const FULL = { bigFile: 1024 * MiB, files: 1000, rounds: 5 };
const QUICK = { bigFile: 256 * MiB, files: 300, rounds: 1 };
const SMALL_SIZE = 64 * KiB;

type Mode = 'default' | 'no-rate-limit';

interface Run {
  mibps: number;
  filesPerSecond: number;
}

/**
 * Whether a server with default settings throttles an honest robot: the same robot (a token, as
 * robots have) uploads one large file and then many small files, once against a server with its
 * default rate limits and once with `--no-rate-limit`, alternating, in the same run. The figures
 * are the ratios default / no limits (1.0 = the limits cost nothing): the median over the rounds
 * of each round's ratio.
 */
export const defaultLimits: Benchmark = {
  name: 'default-limits',
  summary: 'a robot with a token: throughput and files/s with default rate limits vs --no-rate-limit',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const plan = args.quick ? QUICK : FULL;
    const size = args.size ?? plan.bigFile;
    const files = args.files ?? plan.files;
    const rounds = args.rounds ?? plan.rounds;
    const dir = await makeTempDir('default-limits');
    try {
      const big = path.join(dir, 'data', 'big', 'recording.bin');
      await writeRandomFile(big, size);
      const small = path.join(dir, 'data', 'small');
      await writeSmallFiles(small, files, SMALL_SIZE);
      flushDisks();
      say(
        `one file of ${formatBytes(size)}, then ${files} files of ${formatBytes(SMALL_SIZE)}; ` +
          `${rounds} round(s), default limits and --no-rate-limit alternating, the agent with a token`,
      );
      const runs: Record<Mode, Run[]> = { default: [], 'no-rate-limit': [] };
      for (let round = 1; round <= rounds; round += 1) {
        const order: Mode[] = round % 2 === 1 ? ['default', 'no-rate-limit'] : ['no-rate-limit', 'default'];
        for (const mode of order) {
          const run = await once(mode, big, size, small, files, dir);
          runs[mode].push(run);
          say(`round ${round}, ${mode}: ${run.mibps.toFixed(0)} MiB/s, ` + `${run.filesPerSecond.toFixed(0)} files/s`);
        }
      }
      const med = (mode: Mode, key: keyof Run) => median(runs[mode].map((run) => run[key]));
      const pair = (key: keyof Run) => `${med('default', key).toFixed(0)} / ${med('no-rate-limit', key).toFixed(0)}`;
      // The ratio of each round's two runs (back to back), then their median: the machine's
      // drift between rounds (±20 % here) cancels out, and one disturbed run moves one ratio only.
      const pairedRatio = (key: keyof Run) =>
        median(runs.default.map((run, round) => run[key] / (runs['no-rate-limit'][round]?.[key] ?? Number.NaN)));
      const throughputRatio = pairedRatio('mibps');
      const filesRatio = pairedRatio('filesPerSecond');
      say(
        `default / no limits: throughput ${throughputRatio.toFixed(2)}, files/s ${filesRatio.toFixed(2)} ` +
          "(medians of each round's ratio; 1.00 = the default limits cost nothing)",
      );
      return {
        figures: {
          size_bytes: size,
          files,
          rounds,
          default_mibps: fig(med('default', 'mibps'), 1),
          unlimited_mibps: fig(med('no-rate-limit', 'mibps'), 1),
          default_files_per_s: fig(med('default', 'filesPerSecond'), 1),
          unlimited_files_per_s: fig(med('no-rate-limit', 'filesPerSecond'), 1),
          throughput_ratio: fig(throughputRatio, 3),
          files_ratio: fig(filesRatio, 3),
        },
        // The run-to-run noise on this machine is several per cent either way: 0.9 is "the same".
        targets: {
          throughput_ratio: { value: throughputRatio, op: '>=', limit: 0.9 },
          files_ratio: { value: filesRatio, op: '>=', limit: 0.9 },
        },
        row: {
          Workload: `${formatBytes(size)} + ${files} × ${formatBytes(SMALL_SIZE)}`,
          'MiB/s default / no limits': pair('mibps'),
          'files/s default / no limits': pair('filesPerSecond'),
          'Ratios (MiB/s, files/s)': `${throughputRatio.toFixed(2)}, ${filesRatio.toFixed(2)}`,
        },
      };
    } finally {
      await removeTempDir(dir);
    }
  },
};

async function once(mode: Mode, big: string, size: number, small: string, files: number, dir: string): Promise<Run> {
  const storage = path.join(dir, `server-${mode}`);
  const state = path.join(dir, `state-${mode}`);
  const server = await startServerProgram(storage, mode === 'default' ? [] : ['--no-rate-limit'], {
    reportDir: dir,
    env: { UPLOAD_SERVER_TOKENS: `robot1=${TOKEN}` },
  });
  try {
    const agentArgs = ['--token', TOKEN, '--no-transfer-compression'];
    const one = startAgentUpload([big], server.url, `${state}-big`, agentArgs, { reportDir: dir });
    const started = await one.waitForLine(/^uploading /, 60_000);
    const verified = await one.waitForLine(/^verified /, 60_000 + (size / MiB) * 1000);
    if ((await one.exited) !== 0) throw new Error(`${mode}: the agent failed: ${one.stderr().slice(-2000)}`);
    const many = startAgentUpload([small], server.url, `${state}-small`, agentArgs, { reportDir: dir });
    const first = await many.waitForLine(/./, 60_000);
    await many.waitForLine(/^(\d+) of (\d+) file\(s\) verified/, 600_000);
    const code = await many.exited;
    const done = many.lines.filter((line) => line.text.startsWith('verified '));
    if (done.length !== files || code !== 0)
      throw new Error(`${mode}: ${done.length} of ${files} verified, exit ${code}: ${many.stderr().slice(-2000)}`);
    const last = done[done.length - 1];
    const seconds = ((last?.t ?? first.t) - first.t) / 1000;
    return { mibps: mibPerSecond(size, verified.t - started.t), filesPerSecond: files / seconds };
  } finally {
    await server.stop();
    await rm(storage, { recursive: true, force: true });
    await rm(`${state}-big`, { recursive: true, force: true });
    await rm(`${state}-small`, { recursive: true, force: true });
  }
}
