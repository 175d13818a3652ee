import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { SERVER_BIN } from '../helpers/spawn-server.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { AGENT_MAIN, plainEnv, spawnAgent } from './support/spawn-agent.js';

/**
 * The programs say what they are doing: periodic progress lines for a long file, rounded
 * durations, a summary at stop, "server back online after …", live progress bars for the daemon
 * on a terminal, and human-readable server logs on a terminal (JSON otherwise). Terminals are
 * real pseudo-terminals, made by util-linux's `script`.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const messages = (stderr: string): string[] =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg: string }).msg);

interface Terminal {
  /** What the terminal showed so far. */
  readonly screen: string;
  /** Ctrl-C to the program (SIGINT), then waits for script to end. */
  interrupt(): Promise<void>;
}

/** Runs a command line on a pseudo-terminal (util-linux `script`), reading what it shows as it goes. */
function onTerminal(command: string[], env: NodeJS.ProcessEnv): Terminal {
  const line = command.map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(' ');
  // `exec`: the program replaces script's shell, so it is script's child and gets the Ctrl-C.
  const script = spawn('script', ['-qfec', `exec ${line}`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  script.stdout.setEncoding('utf8').on('data', (text: string) => {
    screen += text;
  });
  const ended = new Promise<void>((resolve) => script.once('exit', () => resolve()));
  cleanups.push(async () => {
    script.kill('SIGKILL');
    await ended;
  });
  return {
    get screen() {
      return screen;
    },
    async interrupt() {
      // The program is script's child, in the terminal's session.
      const children = readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, 'utf8').trim().split(/\s+/);
      for (const pid of children.filter(Boolean)) process.kill(Number(pid), 'SIGINT');
      await ended;
    },
  };
}

describe('the agent says what it is doing', { timeout: 180_000 }, () => {
  it('logs progress of a long file periodically, its duration rounded, and a summary at stop', async () => {
    const dir = await createTempDir('say');
    cleanups.push(() => dir.remove());
    const rec = path.join(dir.path, 'rec');
    mkdirSync(path.join(rec, 'b'), { recursive: true });
    writeFileSync(path.join(rec, 'b', 'b_0.mcap'), syntheticMcap(3 * 1024 * 1024));
    writeFileSync(path.join(rec, 'b', 'b_1.mcap'), syntheticMcap(1024));
    const agent = spawnAgent([
      'watch',
      rec,
      '--state-dir',
      path.join(dir.path, 'state'),
      '--embedded-upload-dir',
      path.join(dir.path, 'uploads'),
      '--bandwidth-limit',
      '512KiB',
      '--chunk-size',
      '256KiB',
      '--progress-log-interval',
      '1s',
      // The summary of a stop that leaves work behind: no drain of the bag still being recorded.
      '--drain-timeout',
      '0',
    ]);
    cleanups.push(async () => {
      agent.kill('SIGKILL');
      await agent.exited;
    });
    await waitFor(
      () => messages(agent.stderr).some((m) => m.startsWith('verified b/b_0.mcap')),
      'b_0 verified',
      60_000,
    );
    agent.kill('SIGINT');
    expect((await agent.exited).code).toBe(0);
    const said = messages(agent.stderr);
    expect(
      said.some((m) => /^uploading b\/b_0\.mcap: [\d.]+ (KiB|MiB) of 3 MiB \(\d+ %\), [\d.]+ KiB\/s, ETA \S+$/.test(m)),
    ).toBe(true);
    expect(said.find((m) => m.startsWith('verified b/b_0.mcap'))).toMatch(
      /^verified b\/b_0\.mcap \(3 MiB\) in \d+(\.\d{1,2})? s$/,
    );
    expect(said.at(-1)).toMatch(
      new RegExp(
        '^stopped after \\S+ this run: 1 file\\(s\\) verified \\(3 MiB sent\\), nothing pending, ' +
          '1 waiting to close, 0 failed$',
      ),
    );
    // The bundled server announced itself as a warning.
    expect(agent.stderr).toMatch(/"level":40.*NO SERVER GIVEN: .*uploads/);
  });

  it('says how long the server was away when it is back', async () => {
    const dir = await createTempDir('offline');
    cleanups.push(() => dir.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const proxy = await FaultProxy.start({ port: Number(new URL(server.url).port) });
    cleanups.push(() => proxy.close());
    const logs = captureLogger('info');
    const file = path.join(dir.path, 'f.bin');
    await writeRandomFile(file, 2 * 1024 * 1024);
    const manager = new NetworkManager({
      serverUrl: proxy.url(),
      stateDir: path.join(dir.path, 'state'),
      chunkSize: 256 * 1024,
      maxRetries: 1,
      retryDelay: 0.05,
      retryMaxDelay: 0.5,
      logger: logs.logger,
    });
    cleanups.push(() => manager.stop());
    await proxy.setDown(true);
    await manager.start();
    const id = await manager.addUpload(file, { remotePath: 'f.bin' });
    await waitFor(() => !manager.online, 'the engine offline', 30_000);
    await proxy.setDown(false);
    await waitFor(() => manager.upload(id)?.state === 'completed', 'the upload done once the server is back', 60_000);
    const back = logs.entries().find((entry) => String(entry.msg).startsWith('server back online after'));
    expect(back?.msg).toMatch(/^server back online after (\d+ms|\d+s|\d+m\d*s?)$/);
    expect(Number(back?.offlineSeconds)).toBeGreaterThan(0);
  });

  it('shows live progress bars for the daemon on a terminal, with the log lines above them', async () => {
    const dir = await createTempDir('tty');
    cleanups.push(() => dir.remove());
    const rec = path.join(dir.path, 'rec');
    mkdirSync(path.join(rec, 'b'), { recursive: true });
    writeFileSync(path.join(rec, 'b', 'b_0.mcap'), syntheticMcap(4 * 1024 * 1024));
    writeFileSync(path.join(rec, 'b', 'b_1.mcap'), syntheticMcap(1024));
    const terminal = onTerminal(
      [
        process.execPath,
        AGENT_MAIN,
        'watch',
        rec,
        '--state-dir',
        path.join(dir.path, 'state'),
        '--embedded-upload-dir',
        path.join(dir.path, 'uploads'),
        '--bandwidth-limit',
        '512KiB',
        '--chunk-size',
        '256KiB',
      ],
      plainEnv(),
    );
    // A bar: [####....]  NN% b/b_0.mcap 512 KiB/s ETA …; and human-readable log lines (not JSON).
    await waitFor(() => /\[#*\.*\] +\d+% b\/b_0\.mcap/.test(terminal.screen), 'a progress bar for b_0', 60_000);
    await terminal.interrupt();
    const screen = terminal.screen;
    expect(screen).toContain('watching for recordings');
    expect(screen).not.toMatch(/\{"level":/);
  });
});

describe('the server says what it is doing', { timeout: 120_000 }, () => {
  it('logs human-readable lines on a terminal and JSON lines otherwise', async () => {
    const dir = await createTempDir('server-tty');
    cleanups.push(() => dir.remove());
    const args = [process.execPath, SERVER_BIN, '--port', '0', '--upload-dir', dir.path];
    const terminal = onTerminal(args, { PATH: process.env.PATH ?? '', HOME: dir.path });
    await waitFor(() => /Upload server listening on/.test(terminal.screen), 'the listening line', 30_000);
    await terminal.interrupt();
    expect(terminal.screen).toMatch(/INFO.*Upload server listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(terminal.screen).not.toContain('{"level"');
  });
});
