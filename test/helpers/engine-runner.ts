/**
 * Runs a NetworkManager in its own process, for tests that kill the agent (kill -9) and restart
 * it. Run it with `node --import tsx test/helpers/engine-runner.ts '<json>'` where the JSON is
 * an EngineRunnerSpec. It prints one JSON line per engine event on stdout (progress at most
 * every 100 ms) and exits 0 once every upload completed, 1 when one failed.
 *
 * `spawnEngineRunner()` starts it and collects its lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

export interface EngineRunnerSpec {
  /** NetworkManager options (serverUrl, stateDir, chunkSize, ...). */
  options: Record<string, unknown>;
  uploads: { file: string; remotePath?: string; priority?: number }[];
}

export interface RunnerLine {
  event: string;
  [key: string]: unknown;
}

export interface EngineRunnerProcess {
  readonly child: ChildProcess;
  readonly lines: RunnerLine[];
  stderr(): string;
  readonly exited: Promise<number | string>;
}

const SELF = fileURLToPath(import.meta.url);

export function spawnEngineRunner(spec: EngineRunnerSpec): EngineRunnerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, JSON.stringify(spec)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: RunnerLine[] = [];
  let buffer = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    buffer += text;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        lines.push(JSON.parse(line) as RunnerLine);
      } catch {
        // not ours
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, lines, stderr: () => err, exited };
}

async function main(json: string): Promise<void> {
  const { NetworkManager } = await import('../../agent/engine/network-manager.js');
  const spec = JSON.parse(json) as EngineRunnerSpec;
  const print = (line: RunnerLine): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
  const manager = new NetworkManager({ ...spec.options, logger: pino({ level: 'silent' }) } as never);
  let lastProgress = 0;
  manager.on('progress', (event) => {
    const now = performance.now();
    if (now - lastProgress < 100 && event.bytesSent < event.bytesTotal) return;
    lastProgress = now;
    print({ event: 'progress', id: event.upload.id, bytesSent: event.bytesSent, bytesTotal: event.bytesTotal });
  });
  manager.on('started', (upload) => print({ event: 'started', id: upload.id }));
  manager.on('retrying', (event) =>
    print({ event: 'retrying', id: event.upload.id, reason: event.reason, attempt: event.attempt }),
  );
  manager.on('offline', ({ reason }) => print({ event: 'offline', reason }));
  manager.on('online', () => print({ event: 'online' }));
  const ids: string[] = [];
  const finished = new Map<string, 'completed' | 'failed'>();
  const done = new Promise<void>((resolve) => {
    const check = (): void => {
      if (ids.length === spec.uploads.length && ids.every((id) => finished.has(id))) resolve();
    };
    manager.on('completed', (event) => {
      finished.set(event.upload.id, 'completed');
      print({ event: 'completed', id: event.upload.id, sha256: event.sha256, deduplicated: event.deduplicated });
      check();
    });
    manager.on('failed', (event) => {
      finished.set(event.upload.id, 'failed');
      print({ event: 'failed', id: event.upload.id, reason: event.reason, code: event.code });
      check();
    });
    manager.once('state', check);
  });
  await manager.start();
  // After a restart, pending uploads come back from the journal; adding them again returns their ids.
  for (const upload of spec.uploads) {
    const options = {
      ...(upload.remotePath ? { remotePath: upload.remotePath } : {}),
      ...(upload.priority ? { priority: upload.priority } : {}),
    };
    ids.push(await manager.addUpload(upload.file, options));
  }
  for (const snapshot of manager.status()) {
    if (ids.includes(snapshot.id) && (snapshot.state === 'completed' || snapshot.state === 'failed'))
      finished.set(snapshot.id, snapshot.state);
  }
  print({ event: 'ready', ids });
  if (!(ids.length > 0 && ids.every((id) => finished.has(id)))) await done;
  await manager.stop();
  process.exit([...finished.values()].every((state) => state === 'completed') ? 0 : 1);
}

if (process.argv[1] === SELF && process.argv[2]) {
  main(process.argv[2]).catch((error: unknown) => {
    process.stderr.write(`engine-runner: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(2);
  });
}
