import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UploadAgent } from '../../agent/app/upload-agent.js';
import { NetworkManager } from '../../agent/engine/network-manager.js';
import { runAgent, spawnAgent } from '../cli/support/spawn-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A damaged journal or ledger (garbage bytes, a truncated file, another schema) never stops the
 * agent: it is set aside as `<name>.corrupt-<ISO time>`, logged at error with its path, a new
 * one is started, and what it knew comes back from the server and the recording folder.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function setup(): Promise<{ dir: TempDir; server: TestServer; root: string; state: string }> {
  const dir = await createTempDir('damaged-state');
  cleanups.push(() => dir.remove());
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const root = path.join(dir.path, 'recordings');
  const state = path.join(dir.path, 'state');
  await mkdir(root, { recursive: true });
  await mkdir(state, { recursive: true });
  return { dir, server, root, state };
}

function agentOn(s: { server: TestServer; root: string; state: string }, logger = captureLogger('info')) {
  const agent = new UploadAgent({
    config: {
      serverUrl: s.server.url,
      watchDir: s.root,
      stateDir: s.state,
      quietPeriod: 0.1,
      retryDelay: 0.05,
      retryMaxDelay: 0.5,
    },
    logger: logger.logger,
  });
  cleanups.push(() => agent.stop());
  return { agent, logs: logger };
}

async function writeBag(root: string, name: string, splits: number): Promise<void> {
  await mkdir(path.join(root, name), { recursive: true });
  for (let n = 0; n < splits; n++) await writeFile(path.join(root, name, `${name}_${n}.mcap`), syntheticMcap(5000 + n));
  await writeFile(path.join(root, name, 'metadata.yaml'), `${name}: 1\n`);
}

/** The files set aside in `dir` for `name`. */
function setAside(dir: string, name: string): string[] {
  return readdirSync(dir).filter(
    (entry) =>
      /^.+\.corrupt-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(entry) && entry.startsWith(`${name}.corrupt-`),
  );
}

/** A journal made by a real run of the engine: some rows, then stopped. */
async function realJournal(state: string, server: TestServer, files: string): Promise<void> {
  const manager = new NetworkManager({ uploadUrl: server.url, stateDir: state });
  await manager.start();
  await mkdir(files, { recursive: true });
  for (let n = 0; n < 30; n++) {
    const file = path.join(files, `old-${n}.bin`);
    writeFileSync(file, randomBytes(2000));
    await manager.addUpload(file, { remotePath: `old/old-${n}.bin` });
  }
  await manager.onIdle();
  await manager.stop();
}

describe('a damaged journal or ledger', { timeout: 120_000 }, () => {
  it.each([
    ['garbage bytes', 'journal.sqlite'],
    ['a truncated file', 'journal.sqlite'],
    ['another schema', 'journal.sqlite'],
    ['a newer schema version', 'journal.sqlite'],
    ['garbage bytes', 'uploaded-files.sqlite'],
    ['a truncated file', 'uploaded-files.sqlite'],
    ['another schema', 'uploaded-files.sqlite'],
  ])('%s in %s: set aside, logged with its path, rebuilt; the agent goes on', async (damage, name) => {
    const s = await setup();
    // A bag the server already holds (uploaded before), and one it does not.
    await writeBag(s.root, 'done', 2);
    const first = agentOn(s);
    await first.agent.start();
    await waitFor(() => existsSync(s.server.completedPath('anonymous', 'done/metadata.yaml')), 'the first bag');
    await first.agent.onIdle();
    await first.agent.stop();
    await realJournal(s.state, s.server, path.join(s.root, '..', 'library-files'));
    const file = path.join(s.state, name);
    if (damage === 'garbage bytes') writeFileSync(file, randomBytes(64 * 1024));
    else if (damage === 'a truncated file') truncateSync(file, Math.floor(statSync(file).size / 2));
    else if (damage === 'another schema') {
      for (const suffix of ['', '-wal', '-shm']) if (existsSync(file + suffix)) writeFileSync(file + suffix, '');
      const db = new Database(file);
      db.exec(
        name === 'journal.sqlite'
          ? 'CREATE TABLE uploads (id TEXT PRIMARY KEY, path TEXT)'
          : 'CREATE TABLE uploaded_files (local_path TEXT PRIMARY KEY, digest TEXT)',
      );
      db.close();
    } else {
      const db = new Database(file);
      db.prepare(`UPDATE meta SET value = '99' WHERE key = 'schema_version'`).run();
      db.close();
    }
    const damagedBytes = readFileSync(file);
    await writeBag(s.root, 'fresh', 3);

    const second = agentOn(s);
    await second.agent.start();
    await waitFor(() => existsSync(s.server.completedPath('anonymous', 'fresh/metadata.yaml')), 'the new bag');
    const moved = setAside(s.state, name);
    expect(moved).toHaveLength(1);
    expect(readFileSync(path.join(s.state, moved[0]!)).subarray(0, 100).equals(damagedBytes.subarray(0, 100))).toBe(
      true,
    );
    const loud = second.logs.entries().filter((entry) => entry.level === 50 && String(entry.msg).includes(file));
    expect(loud, 'an error line naming the file').toHaveLength(1);
    expect(String(loud[0]!.msg)).toContain(path.join(s.state, moved[0]!));
    // The bag the server already held is recognised, not sent again as a new file (nothing failed).
    expect(second.agent.status().uploads.filter((upload) => upload.state === 'failed')).toEqual([]);
  });

  it('a damaged lock file is emptied in place: the agent starts (and a held lock still refuses a second)', async () => {
    const s = await setup();
    writeFileSync(path.join(s.state, 'agent.lock'), randomBytes(8192));
    const first = new NetworkManager({ uploadUrl: s.server.url, stateDir: s.state });
    cleanups.push(() => first.stop());
    await first.start();
    expect(statSync(path.join(s.state, 'agent.lock')).size).toBe(0);
    const second = new NetworkManager({ uploadUrl: s.server.url, stateDir: s.state });
    await expect(second.start()).rejects.toMatchObject({ code: 'STATE_DIR_LOCKED' });
  });

  it('the programs go on: `upload` exits 0 (not 73), `watch` keeps running (not 70), naming the file', async () => {
    const s = await setup();
    const note = path.join(s.root, 'note.txt');
    writeFileSync(note, 'field notes');
    await mkdir(path.join(s.state, 'upload-command'), { recursive: true });
    writeFileSync(path.join(s.state, 'upload-command', 'journal.sqlite'), randomBytes(10_000));
    const upload = await runAgent(['upload', note, '--server', s.server.url, '--state-dir', s.state]);
    expect(upload.code, upload.stderr).toBe(0);
    expect(upload.stderr).toContain(path.join(s.state, 'upload-command', 'journal.sqlite'));
    expect(setAside(path.join(s.state, 'upload-command'), 'journal.sqlite')).toHaveLength(1);

    writeFileSync(path.join(s.state, 'uploaded-files.sqlite'), randomBytes(10_000));
    await writeBag(s.root, 'w', 1);
    const watch = spawnAgent([
      'watch',
      s.root,
      '--server',
      s.server.url,
      '--state-dir',
      s.state,
      '--quiet-period',
      '100ms',
      '--no-ros',
    ]);
    cleanups.push(async () => watch.kill('SIGKILL'));
    await waitFor(
      () => existsSync(s.server.completedPath('anonymous', 'w/metadata.yaml')),
      'the bag uploaded by watch',
    );
    expect(watch.stderr).toContain(path.join(s.state, 'uploaded-files.sqlite'));
    watch.kill('SIGTERM');
    expect((await watch.exited).code).toBe(0);
    expect(setAside(s.state, 'uploaded-files.sqlite')).toHaveLength(1);
  });
});
