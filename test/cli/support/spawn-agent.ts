import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The built program (test/global-setup.ts builds dist/ before the tests). */
export const AGENT_MAIN = fileURLToPath(new URL('../../../dist/agent/cli/main.js', import.meta.url));

export interface SpawnedAgent {
  child: ChildProcess;
  /** Everything written so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Settles with the exit code (or the signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** An environment without ROS 2 (so the program runs standalone whatever the machine has sourced). */
export function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of Object.keys(env))
    if (key.startsWith('ROS_') || key === 'AMENT_PREFIX_PATH' || key.startsWith('UPLOAD_AGENT_'))
      if (!(key in extra)) delete env[key];
  return env;
}

/** Runs `node dist/agent/cli/main.js <args>` as a child process (or another command line with `command`). */
export function spawnAgent(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; command?: string[]; detached?: boolean } = {},
): SpawnedAgent {
  const [file, ...pre] = options.command ?? [process.execPath, AGENT_MAIN];
  const child = spawn(file!, [...pre, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? plainEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (options.detached && child.pid) {
        try {
          process.kill(-child.pid, signal);
          return;
        } catch {
          // fall through to the child alone
        }
      }
      child.kill(signal);
    },
  };
}

/** Runs a command line to its end. */
export async function runAgent(
  args: string[],
  options: Parameters<typeof spawnAgent>[1] = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const agent = spawnAgent(args, options);
  const { code } = await agent.exited;
  return { code, stdout: agent.stdout, stderr: agent.stderr };
}
