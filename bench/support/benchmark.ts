/** What every benchmark module provides, and what the runner gives it. */

export interface BenchArgs {
  quick: boolean;
  /** `--size`: bytes (units accepted: 512MiB, 1GiB). */
  size: number | undefined;
  /** `--rounds`: repeat the measurement and report the median. */
  rounds: number | undefined;
  /** `--duration`: seconds (throttle: per limit). */
  duration: number | undefined;
  /** `--files` (small-files; watch: splits). */
  files: number | undefined;
  /** `--bags` (watch). */
  bags: number | undefined;
  /** `--file-size` (small-files). */
  fileSize: number | undefined;
  /** `--uploaders` (fan-in). */
  uploaders: number | undefined;
  /** `--profile <folder>` (throughput, small-files): write CPU profiles (.cpuprofile) of both programs there. */
  profile: string | undefined;
  /** `--rtt <ms,...>` (throughput): round trips added by a delaying proxy, one row each (0: direct). */
  rtt: number[] | undefined;
  /** `--cpu-hog` (throttle): keep both cores busy with other processes while measuring. */
  cpuHog: boolean;
}

export interface BenchContext {
  readonly args: BenchArgs;
  /** Prints one human-readable line. */
  say(line: string): void;
}

/** A target printed next to its figure: met when `value op limit`. */
export interface TargetSpec {
  value: number | undefined;
  op: '>=' | '<=' | '>';
  limit: number;
  /** Shown after the numbers, e.g. "MiB". */
  unit?: string;
}

export interface TargetResult {
  value: number | null;
  target: string;
  met: boolean;
}

export interface BenchResult {
  /** Figures for the JSON line (snake_case keys, numbers rounded). */
  figures: Record<string, unknown>;
  targets: Record<string, TargetSpec>;
  /** The figures of one row of bench/RESULTS.md: column title → cell. */
  row: Record<string, string>;
}

export interface Benchmark {
  readonly name: string;
  /** One line: what it measures. */
  readonly summary: string;
  run(context: BenchContext): Promise<BenchResult>;
}

export function judge(targets: Record<string, TargetSpec>): Record<string, TargetResult> {
  const out: Record<string, TargetResult> = {};
  for (const [name, spec] of Object.entries(targets)) {
    const value =
      spec.value !== undefined && Number.isFinite(spec.value) ? Math.round(spec.value * 10_000) / 10_000 : null;
    const met =
      value !== null &&
      (spec.op === '>=' ? value >= spec.limit : spec.op === '>' ? value > spec.limit : value <= spec.limit);
    out[name] = { value, target: `${spec.op} ${spec.limit}${spec.unit ? ` ${spec.unit}` : ''}`, met };
  }
  return out;
}
