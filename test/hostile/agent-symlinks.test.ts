import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { startHarness, type Harness } from '../cli/support/agent-harness.js';
import { runAgent } from '../cli/support/spawn-agent.js';
import { captureLogger, type CapturedLogs } from '../helpers/capture-logger.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 11 point 1: the agent uploads only regular files really inside its watch root, whatever
 * appears there later and however: a link to a file or to a folder, a folder renamed into a link,
 * a link swapped in between a check and the open. Each test plants a secret outside the root and
 * then looks at everything the server stored (raw and gunzipped): the secret's marker must be in
 * none of it.
 */
const SWAPPER = fileURLToPath(new URL('./support/path-swapper.mjs', import.meta.url));
const MARKER = Buffer.from('TOP-SECRET:outside-the-watch-root');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Content that must never reach the server: the marker, then random bytes (incompressible). */
function secret(size = 8192): Buffer {
  return Buffer.concat([MARKER, randomBytes(size - MARKER.length)]);
}

function inside(size = 8192): Buffer {
  return Buffer.concat([Buffer.from('inside the root:'), randomBytes(size - 16)]);
}

/** Every file under a folder (never following a link) that holds the marker, raw or gunzipped. */
function filesWithSecret(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesWithSecret(full));
    else if (entry.isFile()) {
      const bytes = readFileSync(full);
      let plain: Buffer | undefined;
      try {
        plain = gunzipSync(bytes);
      } catch {
        plain = undefined;
      }
      if (bytes.includes(MARKER) || plain?.includes(MARKER)) found.push(full);
    }
  }
  return found;
}

async function harness(logs: CapturedLogs): Promise<Harness & { outside: string }> {
  const h = await startHarness(
    { quietPeriod: 0.2, settleTime: 1, rescanInterval: 1, retryDelay: 0.05 },
    { logger: logs.logger },
  );
  cleanups.push(() => h.close());
  const outside = path.join(path.dirname(h.root), 'outside');
  mkdirSync(outside);
  return Object.assign(h, { outside });
}

/** Runs the swapper for `ms` milliseconds; resolves with its number of rounds once it ended. */
function swap(target: string, elsewhere: string, ms: number): Promise<number> {
  const child = spawn(process.execPath, [SWAPPER, target, elsewhere, String(ms)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (text: Buffer) => (out += text.toString()));
  child.stderr.on('data', (text: Buffer) => (err += text.toString()));
  cleanups.push(() => {
    child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve(Number(out.trim())) : reject(new Error(`swapper exited ${code}: ${err}`)),
    ),
  );
}

const warnedAbout = (logs: CapturedLogs, file: string) =>
  logs
    .entries()
    .filter((entry) => entry.level === 40 && String(entry.msg).startsWith(`held back ${JSON.stringify(file)}`));

describe('watch: links appearing after start-up are never followed', { timeout: 180_000 }, () => {
  it('a link to a file outside the root, named as a split, is held back and warned once; its bag goes on', async () => {
    const logs = captureLogger('info');
    const h = await harness(logs);
    writeFileSync(path.join(h.outside, 'shadow'), secret());
    mkdirSync(path.join(h.root, 'bag1'));
    writeFileSync(path.join(h.root, 'bag1', 'bag1_0.db3'), inside());
    symlinkSync(path.join(h.outside, 'shadow'), path.join(h.root, 'bag1', 'bag1_1.db3'));
    writeFileSync(path.join(h.root, 'bag1', 'metadata.yaml'), 'x: 1\n');
    await waitFor(() => h.stored('bag1/metadata.yaml'), 'the bag on the server', 60_000);
    expect(h.stored('bag1/bag1_0.db3')).toBeDefined();
    expect(h.stored('bag1/bag1_1.db3')).toBeUndefined();
    const status = h.agent.status();
    expect(status.heldBack).toMatchObject([{ remotePath: 'bag1/bag1_1.db3', code: 'symbolic-link' }]);
    // The status's upload list shows it too (so ~/queue does), with the reason.
    expect(status.uploads.find((upload) => upload.remotePath === 'bag1/bag1_1.db3')?.lastError).toMatch(
      /held back: a symbolic link: links are never followed/,
    );
    await h.agent.watcher!.rescan();
    await h.agent.watcher!.rescan();
    expect(warnedAbout(logs, 'bag1/bag1_1.db3')).toHaveLength(1);
    expect(filesWithSecret(h.server.uploadDir)).toEqual([]);
  });

  it('a link to a folder outside the root is never entered', async () => {
    const logs = captureLogger('info');
    const h = await harness(logs);
    const evil = path.join(h.outside, 'evilbag');
    mkdirSync(evil);
    writeFileSync(path.join(evil, 'evilbag_0.db3'), secret());
    writeFileSync(path.join(evil, 'metadata.yaml'), 'x: 1\n');
    symlinkSync(evil, path.join(h.root, 'evilbag'));
    mkdirSync(path.join(h.root, 'good'));
    writeFileSync(path.join(h.root, 'good', 'good_0.db3'), inside());
    writeFileSync(path.join(h.root, 'good', 'metadata.yaml'), 'x: 1\n');
    await waitFor(() => h.stored('good/metadata.yaml'), 'the real bag on the server', 60_000);
    await h.agent.watcher!.rescan();
    await h.agent.onIdle();
    expect(filesWithSecret(h.server.uploadDir)).toEqual([]);
    expect(h.stored('evilbag/evilbag_0.db3')).toBeUndefined();
    expect(h.stored('evilbag/metadata.yaml')).toBeUndefined();
    await waitFor(
      () => h.agent.status().heldBack.some((held) => held.path === path.join(h.agent.watcher!.root, 'evilbag')),
      'the folder link held back',
      20_000,
    );
  });

  it('a watched folder renamed away and replaced by a link: the files found there are never read', async () => {
    const logs = captureLogger('info');
    const h = await harness(logs);
    const bag = path.join(h.root, 'bag2');
    mkdirSync(bag);
    // The recorder still writes split 0: it is tracked, not uploaded.
    const writer = await open(path.join(bag, 'bag2_0.db3'), 'w');
    cleanups.push(() => writer.close().catch(() => undefined));
    await writer.write(inside());
    await waitFor(
      () => h.agent.watcher!.waiting().some((file) => file.remotePath === 'bag2/bag2_0.db3'),
      'split 0 tracked',
      20_000,
    );
    const evil = path.join(h.outside, 'bag2');
    mkdirSync(evil);
    writeFileSync(path.join(evil, 'bag2_0.db3'), secret());
    writeFileSync(path.join(evil, 'bag2_1.db3'), secret());
    writeFileSync(path.join(evil, 'metadata.yaml'), 'x: 1\n');
    renameSync(bag, path.join(h.root, 'bag2-moved'));
    symlinkSync(evil, bag);
    await writer.close();
    await waitFor(() => h.stored('bag2-moved/bag2_0.db3'), 'the real split, under its new folder', 60_000);
    await h.agent.watcher!.rescan();
    await h.agent.onIdle();
    expect(filesWithSecret(h.server.uploadDir)).toEqual([]);
    expect(readdirSync(h.server.completedPath('anonymous', '.'))).not.toContain('bag2');
    await waitFor(
      () => h.agent.status().heldBack.some((held) => held.path === path.join(h.agent.watcher!.root, 'bag2')),
      'the link held back',
      20_000,
    );
  });

  it('a folder swapped with a link thousands of times while watched: nothing outside reaches the server', async () => {
    const logs = captureLogger('silent');
    const h = await harness(logs);
    const bag = path.join(h.root, 'race');
    const evil = path.join(h.outside, 'race');
    mkdirSync(bag);
    mkdirSync(evil);
    const then = new Date(Date.now() - 60_000);
    // The same names, sizes and times on both sides: only the path tells them apart.
    for (const name of ['race_0.db3', 'race_1.db3', 'metadata.yaml']) {
      writeFileSync(path.join(bag, name), inside());
      writeFileSync(path.join(evil, name), secret());
      utimesSync(path.join(bag, name), then, then);
      utimesSync(path.join(evil, name), then, then);
    }
    const rounds = await swap(bag, evil, 5000);
    expect(rounds).toBeGreaterThan(1000);
    // The real folder is back: its files go, and only they.
    await waitFor(() => h.stored('race/metadata.yaml'), 'the real bag once the swapping stopped', 90_000);
    for (const name of ['race_0.db3', 'race_1.db3', 'metadata.yaml'])
      expect(h.stored(`race/${name}`)?.equals(readFileSync(path.join(bag, name))), name).toBe(true);
    expect(filesWithSecret(h.server.uploadDir)).toEqual([]);
  });
});

describe('the engine: a link swapped in between the check and the open is never read', { timeout: 180_000 }, () => {
  it('races a file and a folder against links for seconds: every stored file is the real one', async () => {
    const temp = await createTempDir('swap-race');
    cleanups.push(() => temp.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const root = path.join(temp.path, 'root');
    const outside = path.join(temp.path, 'outside');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    mkdirSync(path.join(outside, 'sub'), { recursive: true });
    const real = { file: inside(64 * 1024), nested: inside(64 * 1024) };
    writeFileSync(path.join(root, 'f.bin'), real.file);
    writeFileSync(path.join(root, 'sub', 'g.bin'), real.nested);
    writeFileSync(path.join(outside, 'shadow.bin'), secret(64 * 1024));
    writeFileSync(path.join(outside, 'sub', 'g.bin'), secret(64 * 1024));
    const then = new Date(Date.now() - 60_000);
    for (const file of [
      path.join(root, 'f.bin'),
      path.join(root, 'sub', 'g.bin'),
      path.join(outside, 'shadow.bin'),
      path.join(outside, 'sub', 'g.bin'),
    ])
      utimesSync(file, then, then);
    const engine = new NetworkManager({
      uploadUrl: server.url,
      stateDir: path.join(temp.path, 'state'),
      maxConcurrentUploads: 4,
      retryDelay: 0.01,
      retryMaxDelay: 0.05,
    });
    await engine.start();
    cleanups.push(() => engine.stop());
    const swappers = Promise.all([
      swap(path.join(root, 'f.bin'), path.join(outside, 'shadow.bin'), 6000),
      swap(path.join(root, 'sub'), path.join(outside, 'sub'), 6000),
    ]);
    let swapping = true;
    void swappers.finally(() => {
      swapping = false;
    });
    const refusals = new Map<string, number>();
    const ids: string[] = [];
    let round = 0;
    while (swapping) {
      const batch: string[] = [];
      for (const [local, remote] of [
        [path.join(root, 'f.bin'), `f/${round}.bin`],
        [path.join(root, 'sub', 'g.bin'), `g/${round}.bin`],
      ] as const) {
        try {
          batch.push(await engine.addUpload(local, { remotePath: remote }));
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'other';
          refusals.set(code, (refusals.get(code) ?? 0) + 1);
        }
      }
      ids.push(...batch);
      await engine.whenSettled(batch);
      round += 1;
    }
    const [fileRounds, folderRounds] = await swappers;
    const settled = await engine.whenSettled(ids);
    for (const upload of settled) {
      if (upload?.state !== 'failed') continue;
      const code = upload.errorCode ?? 'other';
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
    }
    const completed = settled.filter((upload) => upload?.state === 'completed');
    expect(filesWithSecret(server.uploadDir)).toEqual([]);
    expect(fileRounds + folderRounds).toBeGreaterThan(2000);
    // The race was real: some opens met a link and were refused, some met the real file and went.
    expect(refusals.get('UNSAFE_LOCAL_PATH') ?? 0, JSON.stringify([...refusals])).toBeGreaterThan(0);
    expect(completed.length).toBeGreaterThan(0);
    for (const upload of completed) {
      const stored = readFileSync(server.completedPath('anonymous', upload!.remotePath));
      expect(stored.equals(upload!.remotePath.startsWith('f/') ? real.file : real.nested), upload!.remotePath).toBe(
        true,
      );
    }
    expect(filesWithSecret(server.uploadDir)).toEqual([]);
  });
});

describe('what a person names is resolved once; nothing found inside is followed', { timeout: 180_000 }, () => {
  it('a watch root that is itself a link (~/bags -> /data/bags) is resolved at start and works', async () => {
    const logs = captureLogger('info');
    const linkedRoot = path.join(await createTempDirPath(), 'bags');
    const h = await startHarness(
      { quietPeriod: 0.2, settleTime: 1, watchDir: linkedRoot, createWatchDir: false },
      { logger: logs.logger, start: false },
    );
    cleanups.push(() => h.close());
    mkdirSync(h.root);
    symlinkSync(h.root, linkedRoot);
    await h.agent.start();
    expect(h.agent.watcher!.root).toBe(realpathSync(h.root));
    mkdirSync(path.join(h.root, 'run'));
    writeFileSync(path.join(h.root, 'run', 'run_0.db3'), inside());
    writeFileSync(path.join(h.root, 'run', 'metadata.yaml'), 'x: 1\n');
    await waitFor(() => h.stored('run/metadata.yaml'), 'the bag under the linked root on the server', 60_000);
    expect(h.stored('run/run_0.db3')).toBeDefined();
    expect(h.agent.status().heldBack).toEqual([]);
  });

  it('upload DIR: links, a pipe inside are printed, never read; a bad name not sent; LINK resolved once', async () => {
    const dir = await createTempDir('upload-links');
    cleanups.push(() => dir.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const outside = path.join(dir.path, 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'shadow'), secret());
    mkdirSync(path.join(outside, 'evil'));
    writeFileSync(path.join(outside, 'evil', 'evil_0.db3'), secret());
    const bag = path.join(dir.path, 'run5');
    mkdirSync(bag);
    const split = inside();
    writeFileSync(path.join(bag, 'run5_0.db3'), split);
    symlinkSync(path.join(outside, 'shadow'), path.join(bag, 'run5_1.db3'));
    symlinkSync(path.join(outside, 'evil'), path.join(bag, 'evil'));
    execFileSync('mkfifo', [path.join(bag, 'run5_2.db3')]);
    writeFileSync(path.join(bag, 'bad\nname.txt'), 'a newline in the name');
    writeFileSync(path.join(bag, 'metadata.yaml'), 'x: 1\n');
    const state = path.join(dir.path, 'state');

    const result = await runAgent(['upload', bag, '--server', server.url, '--state-dir', state]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const lines = result.stdout.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('skipped '))).toHaveLength(3);
    expect(result.stdout).toContain(`skipped ${path.join(bag, 'run5_1.db3')}: `);
    expect(result.stdout).toContain(`skipped ${path.join(bag, 'evil')}: `);
    expect(result.stdout).toContain(`skipped ${path.join(bag, 'run5_2.db3')}: `);
    // The name the path rule refuses is not sent, escaped, and its bag's metadata.yaml waits for it.
    expect(result.stdout).toMatch(/^not sent run5\/bad\\u\{A\}name\.txt: .*rename it to upload it$/m);
    expect(result.stdout).toContain('not sent run5/metadata.yaml: it goes after run5/bad\\u{A}name.txt');
    expect(lines.at(-1)).toBe('1 of 3 file(s) verified by the server, 2 failed');
    expect(readFileSync(server.completedPath('anonymous', 'run5/run5_0.db3')).equals(split)).toBe(true);
    expect(existsSync(server.completedPath('anonymous', 'run5/metadata.yaml'))).toBe(false);
    expect(filesWithSecret(server.uploadDir)).toEqual([]);

    // A link named on the command line is what the person asked for: resolved once, its real name used.
    const latest = path.join(dir.path, 'latest');
    symlinkSync(bag, latest);
    const again = await runAgent(['upload', latest, '--server', server.url, '--state-dir', state]);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stdout).toMatch(/verified run5\/run5_0\.db3 /);
    expect(existsSync(server.completedPath('anonymous', 'latest/run5_0.db3'))).toBe(false);
    expect(filesWithSecret(server.uploadDir)).toEqual([]);
  });
});

async function createTempDirPath(): Promise<string> {
  const dir = await createTempDir('linked-root');
  cleanups.push(() => dir.remove());
  return dir.path;
}
