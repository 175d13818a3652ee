import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { trackChild } from './cleanup.js';
import { PeakRssWatcher, cpuSeconds, statusKiB } from './proc-usage.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_PROGRAM = path.join(REPO_ROOT, 'dist/server/cli/main.js');
export const AGENT_PROGRAM = path.join(REPO_ROOT, 'dist/agent/cli/main.js');
const EXIT_USAGE = pathToFileURL(fileURLToPath(new URL('./exit-usage.mjs', import.meta.url))).href;

/** What a child wrote at exit (bench/support/exit-usage.mjs). */
export interface ExitUsage {
  pid: number;
  code: number;
  /** VmHWM at exit: the real peak RSS of the process's life. */
  peakRssKiB: number;
  userSeconds: number;
  systemSeconds: number;
}

export interface Line {
  /** performance.now() when the line arrived. */
  t: number;
  text: string;
}

export interface ChildHandle {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  readonly lines: Line[];
  stderr(): string;
  /** Exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Resolves with the first stdout line (already seen or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<Line & { match: RegExpExecArray }>;
  /** The exit report, once the child exited on its own (undefined after kill -9). */
  usage(): Promise<ExitUsage | undefined>;
  /** Peak RSS in KiB: from the exit report when there is one, else the last VmHWM polled. */
  peakRssKiB(): Promise<number>;
  /** CPU seconds now (from /proc) while it runs. */
  cpuSeconds(): number | undefined;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface SpawnOptions {
  /** Run a TypeScript file through tsx (benchmark children); dist/ programs run as plain node. */
  tsx?: boolean;
  env?: Record<string, string>;
  /** Folder for the exit report (a temporary folder of the benchmark). */
  reportDir: string;
  cwd?: string;
  /** Called with each stderr line as it arrives (the agent's JSON log lines, for `watch`). */
  onStderrLine?: (line: Line) => void;
  /** Flags for node itself (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

let sequence = 0;

/** Variables that would change the programs' settings behind the benchmark's back. */
const FOREIGN_ENV = new RegExp(
  `^(${[
    'HOST',
    'PORT',
    'UPLOAD_DIR',
    'SSL_CERT',
    'SSL_KEY',
    'MAX_FILE_SIZE',
    'COMPRESSION_THRESHOLD',
    'COMPRESSION_LEVEL',
    'UPLOAD_SERVER_.*',
    'UPLOAD_AGENT_.*',
    'NODE_OPTIONS',
    'ROS_.*',
    'AMENT_.*',
  ].join('|')})$`,
);

/**
 * Starts `node [--import tsx] --import exit-usage.mjs <script> ...args` as a tracked child
 * (killed on any exit of the benchmark), collecting its stdout lines with arrival times.
 */
export function spawnNode(name: string, script: string, args: string[], options: SpawnOptions): ChildHandle {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !FOREIGN_ENV.test(key)) env[key] = value;
  sequence += 1;
  const reportFile = path.join(options.reportDir, `usage-${name}-${sequence}.json`);
  Object.assign(env, options.env, { BENCH_USAGE_FILE: reportFile });
  const nodeArgs = [
    ...(options.nodeFlags ?? []),
    ...(options.tsx ? ['--import', 'tsx'] : []),
    '--import',
    EXIT_USAGE,
    script,
    ...args,
  ];
  const startedAt = performance.now();
  const child = spawn(process.execPath, nodeArgs, {
    cwd: options.cwd ?? REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name}`);
  const watcher = new PeakRssWatcher(pid);
  const lines: Line[] = [];
  const waiters: { pattern: RegExp; resolve: (line: Line & { match: RegExpExecArray }) => void }[] = [];
  let buffer = '';
  let err = '';
  let errBuffer = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const t = performance.now();
    buffer += text;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = { t, text: buffer.slice(0, newline) };
      buffer = buffer.slice(newline + 1);
      lines.push(line);
      for (const waiter of [...waiters]) {
        const match = waiter.pattern.exec(line.text);
        if (match) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve({ ...line, match });
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (options.onStderrLine) {
      const t = performance.now();
      errBuffer += text;
      for (let newline = errBuffer.indexOf('\n'); newline >= 0; newline = errBuffer.indexOf('\n')) {
        options.onStderrLine({ t, text: errBuffer.slice(0, newline) });
        errBuffer = errBuffer.slice(newline + 1);
      }
    }
    err += text;
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      watcher.stop();
      resolve(code ?? signal ?? -1);
    });
  });
  const handle: ChildHandle = {
    name,
    child,
    pid,
    startedAt,
    lines,
    stderr: () => err,
    exited,
    waitForLine(pattern, timeoutMs) {
      for (const line of lines) {
        const match = pattern.exec(line.text);
        if (match) return Promise.resolve({ ...line, match });
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          pattern,
          resolve: (line: Line & { match: RegExpExecArray }) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(
            new Error(
              `${name}: no line matching ${pattern} within ${timeoutMs / 1000} s\n` +
                `stdout tail: ${tail(lines)}\nstderr tail: ${err.slice(-2000)}`,
            ),
          );
        }, timeoutMs);
        waiters.push(waiter);
        void exited.then((code) => {
          if (!waiters.includes(waiter)) return;
          waiters.splice(waiters.indexOf(waiter), 1);
          clearTimeout(timer);
          reject(
            new Error(
              `${name} exited (${code}) before printing a line matching ${pattern}\n` +
                `stdout tail: ${tail(lines)}\nstderr tail: ${err.slice(-2000)}`,
            ),
          );
        });
      });
    },
    async usage() {
      await exited;
      try {
        return JSON.parse(await readFile(reportFile, 'utf8')) as ExitUsage;
      } catch {
        return undefined;
      }
    },
    async peakRssKiB() {
      const report = await handle.usage();
      return Math.max(report?.peakRssKiB ?? 0, watcher.peakKiB);
    },
    cpuSeconds: () => cpuSeconds(pid),
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return handle;
}

function tail(lines: Line[]): string {
  return lines
    .slice(-5)
    .map((line) => line.text)
    .join('\n');
}

export interface ServerProgram {
  readonly handle: ChildHandle;
  readonly url: string;
  readonly port: number;
  /** Peak RSS so far (VmHWM, KiB) while it runs. */
  peakRssKiB(): number;
  /** Graceful stop (SIGTERM; SIGKILL after 15 s). */
  stop(): Promise<void>;
}

/** The node flags a program's `#!/usr/bin/env -S node <flags>` line passes (none for a plain `node`). */
function shebangNodeFlags(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  return match?.[1] ? match[1].trim().split(/\s+/) : [];
}

/**
 * Starts `ros2-upload-server` (dist/) on 127.0.0.1, a free port, storing in `uploadDir`, and
 * waits for its "listening" line. `args` adds options (e.g. `--no-rate-limit`).
 */
export async function startServerProgram(
  uploadDir: string,
  args: string[],
  options: { reportDir: string; env?: Record<string, string>; nodeFlags?: string[] },
): Promise<ServerProgram> {
  const handle = spawnNode(
    'server',
    SERVER_PROGRAM,
    ['--host', '127.0.0.1', '--port', '0', '--upload-dir', uploadDir, ...args],
    {
      reportDir: options.reportDir,
      ...(options.env ? { env: options.env } : {}),
      // As the program runs when started by its name: with the node flags of its shebang.
      nodeFlags: [...shebangNodeFlags(SERVER_PROGRAM), ...(options.nodeFlags ?? [])],
    },
  );
  const listening = await handle.waitForLine(/"event":"listening","url":"([^"]+)"/, 30_000);
  const url = listening.match[1]!;
  return {
    handle,
    url,
    port: Number(new URL(url).port),
    peakRssKiB: () => statusKiB(handle.pid, 'VmHWM') ?? 0,
    async stop() {
      handle.kill('SIGTERM').catch(() => undefined);
      const timer = setTimeout(() => handle.kill('SIGKILL'), 15_000);
      await handle.exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Runs `ros2-upload-agent upload <paths...> --server <url> --state-dir <stateDir> ...args`
 * (dist/). Its stdout is plain (not a terminal): one line per state change, `verified ...` per
 * file and a summary line.
 */
export function startAgentUpload(
  paths: string[],
  serverUrl: string,
  stateDir: string,
  args: string[],
  options: { reportDir: string; nodeFlags?: string[] },
): ChildHandle {
  return spawnNode(
    'agent',
    AGENT_PROGRAM,
    ['upload', ...paths, '--server', serverUrl, '--state-dir', stateDir, ...args],
    { reportDir: options.reportDir, ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}) },
  );
}

/**
 * Runs `ros2-upload-agent watch <dir> --server <url> --state-dir <stateDir> --no-ros ...args`
 * (dist/). It logs JSON lines on stderr (not a terminal); `onStderrLine` sees each.
 */
export function startAgentWatch(
  dir: string,
  serverUrl: string,
  stateDir: string,
  args: string[],
  options: { reportDir: string; onStderrLine: (line: Line) => void },
): ChildHandle {
  return spawnNode(
    'agent-watch',
    AGENT_PROGRAM,
    ['watch', dir, '--server', serverUrl, '--state-dir', stateDir, '--no-ros', ...args],
    { reportDir: options.reportDir, onStderrLine: options.onStderrLine },
  );
}
