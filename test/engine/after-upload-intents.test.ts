import Database from 'better-sqlite3';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { afterUploadIntent, carryOut } from '../../agent/watcher/after-upload.js';
import { LEDGER_FILE, UploadLedger } from '../../agent/watcher/upload-ledger.js';
import { spawnAgent } from '../cli/support/spawn-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { makeReadOnly, mountProblem, mountSmallFilesystem } from '../helpers/small-filesystem.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * After-upload actions (delete, move) are journaled intents: written durably before the action,
 * carried out only on the version the server verified, with the folder fsynced, and replayed at
 * start-up until done. A real kill -9 between the intent and a durable action is made
 * deterministic by a read-only bind mount over the bag folder (the unlink fails with EROFS, as
 * it would be lost in a power cut), lifted before the restart.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let cannotMount: string | undefined;
beforeAll(async () => {
  const scratch = await createTempDir('mount-check');
  cannotMount = await mountProblem(scratch.path);
  await scratch.remove();
  if (cannotMount && process.env.CI)
    throw new Error(`after-upload intent tests need mounts (run as root), which failed: ${cannotMount}`);
});

async function setup(): Promise<{ dir: TempDir; server: TestServer; root: string; state: string }> {
  const dir = await createTempDir('intents');
  cleanups.push(() => dir.remove());
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const root = path.join(dir.path, 'recordings');
  await mkdir(root, { recursive: true });
  return { dir, server, root, state: path.join(dir.path, 'state') };
}

function watch(s: { server: TestServer; root: string; state: string }, policy: string) {
  const agent = spawnAgent([
    'watch',
    s.root,
    '--server',
    s.server.url,
    '--state-dir',
    s.state,
    '--after-upload',
    policy,
    '--quiet-period',
    '100ms',
    '--log-level',
    'debug',
    '--no-ros',
  ]);
  cleanups.push(() => agent.kill('SIGKILL'));
  return agent;
}

describe('after-upload intents', { timeout: 120_000 }, () => {
  it('an intent written, then kill -9 before the delete was durable: the next start completes it', async (context) => {
    if (cannotMount) context.skip(`cannot mount here: ${cannotMount}`);
    const s = await setup();
    const bag = path.join(s.root, 'r');
    await mkdir(bag);
    const split = syntheticMcap(50_000);
    writeFileSync(path.join(bag, 'r_0.mcap'), split);
    writeFileSync(path.join(bag, 'metadata.yaml'), 'r: 1\n');
    const writable = makeReadOnly(bag);
    cleanups.push(writable);

    const first = watch(s, 'delete');
    // The intent is durable and its action failed (not done): the state a power cut leaves too.
    await waitFor(
      () => /after-upload policy failed; the file stays/.test(first.stderr),
      'the delete attempted',
      60_000,
    );
    const ledger = new UploadLedger(s.state);
    const pending = ledger.intents().map((intent) => path.basename(intent.localPath));
    ledger.close();
    expect(pending).toContain('r_0.mcap');
    first.kill('SIGKILL');
    await first.exited;
    expect(existsSync(path.join(bag, 'r_0.mcap'))).toBe(true);

    writable();
    const second = watch(s, 'delete');
    await waitFor(() => !existsSync(path.join(bag, 'r_0.mcap')), 'the delete completed after the restart', 60_000);
    // The line follows the unlink and the folder's fsync: wait for it rather than expect it at once.
    await waitFor(
      () => /after-upload policy completed \(decided before a restart\)/.test(second.stderr),
      'its log line',
    );
    expect(readFileSync(s.server.completedPath('anonymous', 'r/r_0.mcap')).equals(split)).toBe(true);
    await waitFor(() => !existsSync(bag), 'the emptied bag folder removed once metadata.yaml went');
    await waitFor(() => {
      const check = new UploadLedger(s.state);
      try {
        return check.intents().length === 0;
      } finally {
        check.close();
      }
    }, 'every intent done and forgotten');
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('verified in the journal, stopped before the ledger knew it: the next start records and deletes it', async () => {
    const s = await setup();
    const bag = path.join(s.root, 'j');
    await mkdir(bag);
    const split = syntheticMcap(30_000);
    writeFileSync(path.join(bag, 'j_0.mcap'), split);
    writeFileSync(path.join(bag, 'metadata.yaml'), 'j: 1\n');
    // Uploaded and recorded with the keep policy; then the ledger loses the split, as a kill -9
    // between the journal's "completed" and the ledger's record leaves it.
    const first = watch(s, 'keep');
    await waitFor(
      () =>
        /uploaded and verified/.test(first.stderr) &&
        existsSync(s.server.completedPath('anonymous', 'j/metadata.yaml')),
      'the bag uploaded',
      60_000,
    );
    const known = (file: string): boolean => {
      const ledger = new UploadLedger(s.state);
      try {
        return ledger.get(file) !== undefined;
      } finally {
        ledger.close();
      }
    };
    await waitFor(() => known(path.join(bag, 'metadata.yaml')), 'the ledger record');
    first.kill('SIGKILL');
    await first.exited;
    const db = new Database(path.join(s.state, LEDGER_FILE));
    db.prepare('DELETE FROM uploaded_files WHERE local_path = ?').run(path.join(bag, 'j_0.mcap'));
    db.close();
    expect(known(path.join(bag, 'j_0.mcap'))).toBe(false);

    const second = watch(s, 'delete');
    await waitFor(() => !existsSync(path.join(bag, 'j_0.mcap')), 'the split deleted after the restart', 60_000);
    expect(readFileSync(s.server.completedPath('anonymous', 'j/j_0.mcap')).equals(split)).toBe(true);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('a file whose version changed since it was verified is never deleted', async (context) => {
    if (cannotMount) context.skip(`cannot mount here: ${cannotMount}`);
    const s = await setup();
    const bag = path.join(s.root, 'v');
    await mkdir(bag);
    writeFileSync(path.join(bag, 'v_0.mcap'), syntheticMcap(40_000));
    writeFileSync(path.join(bag, 'metadata.yaml'), 'v: 1\n');
    const writable = makeReadOnly(bag);
    cleanups.push(writable);
    const first = watch(s, 'delete');
    await waitFor(
      () => /after-upload policy failed; the file stays/.test(first.stderr),
      'the delete attempted',
      60_000,
    );
    first.kill('SIGKILL');
    await first.exited;
    writable();
    // The recording is rewritten (another version at the same path) before the agent comes back.
    writeFileSync(path.join(bag, 'v_0.mcap'), syntheticMcap(45_000));
    const version = statSync(path.join(bag, 'v_0.mcap'));

    const second = watch(s, 'keep');
    await waitFor(
      () => /not deleted: the file changed since the server verified it/.test(second.stderr),
      'the replay',
      60_000,
    );
    expect(existsSync(path.join(bag, 'v_0.mcap'))).toBe(true);
    expect(statSync(path.join(bag, 'v_0.mcap')).size).toBe(version.size);
  });
});

describe('carrying out one intent', () => {
  it('touches only the verified version, is idempotent, and moves across file systems durably', async (context) => {
    const dir = await createTempDir('carry-out');
    cleanups.push(() => dir.remove());
    const root = path.join(dir.path, 'root');
    await mkdir(path.join(root, 'b'), { recursive: true });
    const file = path.join(root, 'b', 'b_0.mcap');
    await writeFile(file, 'verified bytes');
    const info = statSync(file);
    const target = { path: file, remotePath: 'b/b_0.mcap', completesBag: false, sha256: 'x'.repeat(64) };
    const version = { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };

    // Another version at the path: left alone.
    const changed = afterUploadIntent(
      'delete',
      { ...target, version: { ...version, size: version.size + 1 } },
      { root, moveTo: undefined },
    );
    expect(await carryOut(changed)).toBe('changed');
    expect(existsSync(file)).toBe(true);
    // The verified version: deleted; again (a replay): already done.
    const remove = afterUploadIntent('delete', { ...target, version }, { root, moveTo: undefined });
    expect(await carryOut(remove)).toBe('done');
    expect(existsSync(file)).toBe(false);
    expect(await carryOut(remove)).toBe('already');

    // A move to another file system (EXDEV: copy, fsync, unlink).
    if (cannotMount) context.skip(`cannot mount here: ${cannotMount}`);
    const other = await mountSmallFilesystem(path.join(dir.path, 'elsewhere'), 1024 * 1024);
    cleanups.push(() => other.unmount());
    await writeFile(file, 'moved bytes');
    const moved = statSync(file);
    const move = afterUploadIntent(
      'move',
      { ...target, completesBag: true, version: { size: moved.size, mtimeMs: moved.mtimeMs, ino: moved.ino } },
      { root, moveTo: other.dir },
    );
    expect(await carryOut(move)).toBe('done');
    expect(readFileSync(path.join(other.dir, 'b', 'b_0.mcap'), 'utf8')).toBe('moved bytes');
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.join(root, 'b')), 'the emptied bag folder went with its last file').toBe(false);
    expect(await carryOut(move)).toBe('already');
  });
});
