import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, fixtureBag } from '../helpers/bag-writer.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { plainEnv, REPO_ROOT, spawnAgent } from './support/spawn-agent.js';

/**
 * Acceptance: `npm start` on a fresh clone uploads a bag dropped into ./recordings.
 *
 * The clone is `git clone` of this repository (what CI and a new user get). Instead of a
 * second `npm ci` (minutes, and network), the clone uses this checkout's node_modules through a
 * symlink and is built with the same `tsc -p tsconfig.build.json` that `npm ci` runs as
 * `prepare`. Then `npm start` runs exactly as the README says.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function freshClone(target: string): void {
  try {
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', REPO_ROOT, target], { stdio: 'pipe' });
    return;
  } catch {
    // Not a git checkout (an unpacked archive): copy the tracked kinds of files instead.
  }
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(REPO_ROOT)) {
    if (['node_modules', 'dist', '.git', 'recordings', 'uploads', '.upload-agent-state'].includes(entry)) continue;
    cpSync(path.join(REPO_ROOT, entry), path.join(target, entry), { recursive: true });
  }
}

describe('npm start on a fresh clone', { timeout: 300_000 }, () => {
  it('watches ./recordings and uploads a dropped bag into ./uploads, byte-identical', async () => {
    const dir = await createTempDir('fresh-clone');
    cleanups.push(() => dir.remove());
    const clone = path.join(dir.path, 'ros2-upload-agent');
    freshClone(clone);
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
    execFileSync(
      process.execPath,
      [path.join(clone, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: clone, stdio: 'pipe' },
    );
    expect(existsSync(path.join(clone, 'recordings'))).toBe(false);

    const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];
    const agent = spawnAgent(['start'], { cwd: clone, command: npm, env: plainEnv(), detached: true });
    cleanups.push(async () => {
      agent.kill('SIGKILL');
      await agent.exited;
    });
    await waitFor(
      () => agent.stderr.includes('watching for recordings') || agent.child.exitCode !== null,
      'the agent watching',
      60_000,
    );
    expect(agent.child.exitCode, agent.stderr).toBeNull();
    expect(existsSync(path.join(clone, 'recordings'))).toBe(true);

    // Drop a recorded bag in.
    cpSync(path.join(FIXTURES, 'sqlite_plain'), path.join(clone, 'recordings', 'sqlite_plain'), { recursive: true });
    const stored = (name: string): string =>
      path.join(clone, 'uploads', 'completed', 'anonymous', 'sqlite_plain', name);
    const bag = fixtureBag('sqlite_plain');
    await waitFor(() => [...bag.keys()].every((name) => existsSync(stored(name))), 'the bag in ./uploads', 60_000);
    for (const [name, bytes] of bag) expect(readFileSync(stored(name)).equals(bytes), name).toBe(true);

    agent.kill('SIGTERM');
    const exit = await agent.exited;
    expect(exit.code === 0 || exit.signal === 'SIGTERM', agent.stderr).toBe(true);
  });
});
