import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled server program (test/global-setup.ts builds dist/ before the tests). */
export const SERVER_BIN = fileURLToPath(new URL('../../dist/server/cli/main.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Base URL from the server's "listening" log line. */
  readonly url: string;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** Sends a signal (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface SpawnOptions {
  /** Extra environment (merged over a copy of process.env without the server's own variables). */
  env?: Record<string, string>;
  /** Give up waiting for the listening line after this long. */
  timeoutMs?: number;
  /** Started as the kernel starts an executable file: its `#!` line's interpreter and argument, then the file. */
  byShebang?: boolean;
}

/** The command that runs `script` with `args` as its `#!` line says (Linux: one argument after the interpreter). */
function shebangCommand(script: string, args: string[]): [string, string[]] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\s*(\S+)(?:\s+(.*\S))?\s*$/.exec(first);
  if (!match) throw new Error(`${script} has no #! line`);
  return [match[1]!, [...(match[2] ? [match[2]] : []), script, ...args]];
}

/** Variables that would change the server's settings behind the test's back. */
const SERVER_SETTINGS_ENV = new RegExp(
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
  ].join('|')})$`,
);

/**
 * Runs `node dist/server/cli/main.js ...args` as a child process and waits until it logs that it
 * listens (pass `--port 0 --host 127.0.0.1` and an `--upload-dir`; the log level must stay at info or below, since the
 * "listening" line is what it waits for). Rejects with the output when
 * it exits first. Kill it with `stop()` (or `child.kill('SIGKILL')` to simulate a crash).
 */
export async function spawnServer(args: string[], options: SpawnOptions = {}): Promise<ServerProcess> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !SERVER_SETTINGS_ENV.test(key)) env[key] = value;
  }
  const [command, commandArgs] = options.byShebang
    ? shebangCommand(SERVER_BIN, args)
    : [process.execPath, [SERVER_BIN, ...args]];
  const child = spawn(command, commandArgs, {
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: path.dirname(SERVER_BIN),
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`server did not start within ${options.timeoutMs ?? 20_000} ms\nstdout: ${out}\nstderr: ${err}`),
      );
    }, options.timeoutMs ?? 20_000);
    const check = (): void => {
      const match = /"event":"listening","url":"([^"]+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  return {
    child,
    url,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the server program to completion (for startup errors and --help); resolves with its exit code and output. */
export function runServerProgram(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER_BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server program did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}
