/**
 * The benchmarks (issue 6): `npm run bench -- <name> [options]`; with no name, every benchmark
 * runs with --quick. Each prints human-readable lines and, as its last line, one JSON object
 * `{"bench":"<name>", ...figures, "targets": {...}}`. Targets are printed next to the figures
 * (met or not); a missed target does not change the exit code, a benchmark that could not run
 * does (1). See docs/benchmarks.md and bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration, parseSize } from '../common/config/units.js';
import { abandonedSessions } from './benchmarks/abandoned-sessions.js';
import { complete } from './benchmarks/complete.js';
import { dashboard } from './benchmarks/dashboard.js';
import { fanIn } from './benchmarks/fan-in.js';
import { fanInCluster } from './benchmarks/fan-in-cluster.js';
import { resume } from './benchmarks/resume.js';
import { smallFiles } from './benchmarks/small-files.js';
import { defaultLimits } from './benchmarks/default-limits.js';
import { throttle } from './benchmarks/throttle.js';
import { throughput } from './benchmarks/throughput.js';
import { watch } from './benchmarks/watch.js';
import { judge, type BenchArgs, type Benchmark } from './support/benchmark.js';
import { installCleanup, killAllChildren } from './support/cleanup.js';
import { machineInfo } from './support/machine.js';
import { REPO_ROOT } from './support/processes.js';
import { RESULTS_FILE, recordResult } from './support/results-file.js';

const benchmarks: Benchmark[] = [
  throughput,
  throttle,
  smallFiles,
  resume,
  fanIn,
  complete,
  fanInCluster,
  abandonedSessions,
  watch,
  defaultLimits,
  dashboard,
];

const USAGE = `Usage: npm run bench -- [<name>...] [options]

Benchmarks (no name: all of them, each with --quick):
${benchmarks.map((b) => `  ${b.name.padEnd(12)} ${b.summary}`).join('\n')}

Options:
  --quick             the small size that finishes in under a minute
  --size <size>       file size (throughput, resume, complete; fan-in: per uploader), e.g. 512MiB
  --rounds <n>        throughput (default 1), complete (default 3, quick 2): repeat, report the median
  --duration <secs>   throttle: seconds per limit (default 20, quick 5); abandoned-sessions: session expiry;
                      dashboard: load window (30, quick 10)
  --files <n>         small-files: number of files (default 2000); abandoned-sessions: sessions (100000);
                      watch: splits (default 10000)
  --file-size <size>  small-files: size of each file (default 64KiB); watch: of each split (16KiB)
  --bags <n>          watch: bag folders the splits are spread over (default 50)
  --uploaders <n>     fan-in, fan-in-cluster: concurrent uploaders (default 50)
  --rtt <ms,...>      throughput: round trips to add with a delaying proxy, one measurement each
                      (default 0,50,150; quick: 0)
  --profile <folder>  throughput, small-files: write CPU profiles (.cpuprofile) of the agent and the server there
  --cpu-hog           throttle: measure with both cores kept busy by other processes
  --record            append the figures to bench/RESULTS.md
  --no-build          do not rebuild dist/ first (the programs measured are dist/'s)
  -h, --help          this text
`;

function parse(argv: string[]): { names: string[]; args: BenchArgs; record: boolean; build: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    allowNegative: true,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      size: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      files: { type: 'string' },
      'file-size': { type: 'string' },
      bags: { type: 'string' },
      uploaders: { type: 'string' },
      rtt: { type: 'string' },
      profile: { type: 'string' },
      'cpu-hog': { type: 'boolean', default: false },
      record: { type: 'boolean', default: false },
      build: { type: 'boolean', default: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const size = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const value = parseSize(text);
    if (value === undefined || value <= 0)
      throw new Error(`--${name} ${JSON.stringify(text)} is not a size (e.g. 512MiB)`);
    return value;
  };
  const count = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`--${name} ${JSON.stringify(text)} is not a positive whole number`);
    return value;
  };
  const duration = values.duration === undefined ? undefined : parseDuration(values.duration);
  if (values.duration !== undefined && (duration === undefined || duration <= 0))
    throw new Error(`--duration ${JSON.stringify(values.duration)} is not a duration`);
  for (const name of positionals) {
    if (!benchmarks.some((b) => b.name === name))
      throw new Error(`unknown benchmark "${name}" (one of ${benchmarks.map((b) => b.name).join(', ')})`);
  }
  const all = positionals.length === 0;
  return {
    names: all ? benchmarks.map((b) => b.name) : positionals,
    args: {
      quick: all || values.quick === true,
      size: size('size', values.size),
      rounds: count('rounds', values.rounds),
      duration,
      files: count('files', values.files),
      bags: count('bags', values.bags),
      fileSize: size('file-size', values['file-size']),
      uploaders: count('uploaders', values.uploaders),
      profile: values.profile === undefined ? undefined : path.resolve(values.profile),
      rtt: values.rtt === undefined ? undefined : rtts(values.rtt),
      cpuHog: values['cpu-hog'] === true,
    },
    record: values.record === true,
    build: values.build !== false,
  };
}

function rtts(text: string): number[] {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((value) => !Number.isFinite(value) || value < 0))
    throw new Error(`--rtt ${JSON.stringify(text)} is not a list of milliseconds (e.g. 0,50,150)`);
  return values;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The programs measured are dist/'s: build it (incremental; tsc emits even with type errors elsewhere). */
function build(): void {
  say('building dist/ (tsc -p tsconfig.build.json) ...');
  try {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
      cwd: REPO_ROOT,
      stdio: 'pipe',
    });
  } catch (error) {
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    say(`tsc reported problems (dist/ was still emitted):\n${out.slice(0, 2000)}`);
  }
}

async function main(): Promise<number> {
  installCleanup();
  const { names, args, record, build: rebuild } = parse(process.argv.slice(2));
  if (rebuild) build();
  let failures = 0;
  for (const name of names) {
    const bench = benchmarks.find((b) => b.name === name)!;
    const before = machineInfo();
    const date = new Date().toISOString();
    say(`== ${bench.name}${args.quick ? ' --quick' : ''}: ${bench.summary}`);
    say(`   ${before.cores} × ${before.cpuModel}, Node ${before.node}, load average ${before.loadAverage.join(' ')}`);
    try {
      const result = await bench.run({ args, say: (line) => say(`   ${line}`) });
      const after = machineInfo();
      const targets = judge(result.targets);
      for (const [target, outcome] of Object.entries(targets)) {
        say(`   target ${target} ${outcome.target}: ${outcome.value ?? 'n/a'} → ${outcome.met ? 'met' : 'NOT MET'}`);
      }
      say(`   load average after: ${after.loadAverage.join(' ')}`);
      say(
        JSON.stringify({
          bench: bench.name,
          quick: args.quick,
          date,
          ...result.figures,
          load_average: { before: before.loadAverage, after: after.loadAverage },
          machine: { cores: before.cores, cpu: before.cpuModel, node: before.node },
          targets,
        }),
      );
      if (record) {
        recordResult({
          bench: bench.name,
          date: `${date.slice(0, 16).replace('T', ' ')} UTC`,
          quick: args.quick,
          cells: result.row,
          targets,
          before,
          after,
        });
        say(`   recorded in ${RESULTS_FILE}`);
      }
    } catch (error) {
      failures += 1;
      const message = error instanceof Error ? error.message : String(error);
      say(`   FAILED: ${message}`);
      say(JSON.stringify({ bench: bench.name, quick: args.quick, date, error: message.split('\n')[0] }));
    } finally {
      await killAllChildren();
    }
  }
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  },
);
