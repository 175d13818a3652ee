import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The engines behind the scale-out shape, each started by its script in scripts/engines/ (the
 * same scripts a user runs by hand), so that tests and benchmarks exercise what the README
 * tells people to run.
 */
export const ENGINES = ['ceph-rgw', 'postgres'] as const;
export type EngineName = (typeof ENGINES)[number];

/** The KEY=VALUE lines a script printed on a successful start (S3_ENDPOINT=..., DATABASE_URL=...). */
export type EngineEnv = Readonly<Record<string, string>>;

/** Longest a start may take: Ceph's own waits are bounded at 120 s each. */
const START_LIMIT_MS = 6 * 60_000;
/** Longest a stop may take: the script sends KILL to what ignores TERM for 30 s. */
const STOP_LIMIT_MS = 2 * 60_000;

export function engineScript(name: EngineName): string {
  return fileURLToPath(new URL(`../../scripts/engines/${name}.sh`, import.meta.url));
}

export function parseEngineEnv(stdout: string): EngineEnv {
  const env: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

function run(name: EngineName, args: string[], limitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [engineScript(name), ...args],
      { timeout: limitMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const why = error.killed
          ? `did not finish within ${limitMs / 1000} s`
          : `exited with ${error.code ?? error.signal}`;
        reject(new Error(`scripts/engines/${name}.sh ${args.join(' ')} ${why}:\n${stderr.trim() || stdout.trim()}`));
      },
    );
  });
}

/** Starts (or restarts) the engine kept in `dir`; rejects with the script's own reason. */
export async function startEngine(name: EngineName, dir: string): Promise<EngineEnv> {
  return parseEngineEnv(await run(name, ['start', dir], START_LIMIT_MS));
}

/** Stops every process of the engine in `dir` and waits for them; `wipe` also removes `dir`. */
export async function stopEngine(name: EngineName, dir: string, wipe = false): Promise<void> {
  await run(name, ['stop', dir, ...(wipe ? ['--wipe'] : [])], STOP_LIMIT_MS);
}

/** The same, blocking: for a process 'exit' handler, where nothing asynchronous runs. */
export function stopEngineSync(name: EngineName, dir: string, wipe = false): void {
  spawnSync('bash', [engineScript(name), 'stop', dir, ...(wipe ? ['--wipe'] : [])], {
    stdio: 'ignore',
    timeout: STOP_LIMIT_MS,
  });
}
