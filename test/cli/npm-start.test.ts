import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, fixtureBag, syntheticMcap } from '../helpers/bag-writer.js';
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

/**
 * `npm start` in `clone`, in a process group of its own (as a terminal runs it), so a Ctrl-C can
 * be sent to the group.
 */
function npmStart(clone: string, env: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnAgent> {
  const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const agent = spawnAgent(['start'], { cwd: clone, command: npm, env: plainEnv(env), detached: true });
  cleanups.push(async () => {
    agent.kill('SIGKILL');
    await agent.exited;
  });
  return agent;
}

/** The bundled server's log lines (at debug level) of one event about `remotePath`. */
function serverEvents(stderr: string, event: string, remotePath: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`) && line.includes(`"path":"${remotePath}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** How many chunks of `remotePath` the bundled server says it holds (its progress lines, every 10 %). */
function chunksReceived(stderr: string, remotePath: string): number {
  return Math.max(0, ...serverEvents(stderr, 'upload_progress', remotePath).map((e) => Number(e.receivedChunks)));
}

describe('npm start on a fresh clone', { timeout: 300_000 }, () => {
  it('uploads a dropped bag into ./uploads; Ctrl-C exits 0; the next start sends only the rest of a file', async () => {
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

    const agent = npmStart(clone);
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

    // Ctrl-C in a terminal: SIGINT to the whole process group (npm forwards it to the agent
    // too). The README promises exit 0.
    agent.kill('SIGINT');
    expect(await agent.exited, agent.stderr).toEqual({ code: 0, signal: null });

    // Ctrl-C halfway through a large file, then start again: only the rest is sent, although
    // the bundled server listens on another port now.
    const big = syntheticMcap(16 * 1024 * 1024);
    mkdirSync(path.join(clone, 'recordings', 'big'));
    writeFileSync(path.join(clone, 'recordings', 'big', 'big_0.mcap'), big);
    writeFileSync(path.join(clone, 'recordings', 'big', 'big_1.mcap'), syntheticMcap(1024));
    const slow = {
      UPLOAD_AGENT_BANDWIDTH_LIMIT: '1MiB',
      UPLOAD_AGENT_CHUNK_SIZE: '1MiB',
      UPLOAD_AGENT_LOG_LEVEL: 'debug',
    };
    const first = npmStart(clone, slow);
    await waitFor(() => chunksReceived(first.stderr, 'big/big_0.mcap') >= 3, 'three chunks of big_0 received', 60_000);
    first.kill('SIGINT');
    expect(await first.exited, first.stderr).toEqual({ code: 0, signal: null });
    const sentBefore = chunksReceived(first.stderr, 'big/big_0.mcap');
    expect(sentBefore).toBeLessThan(16);

    const second = npmStart(clone, slow);
    const storedBig = path.join(clone, 'uploads', 'completed', 'anonymous', 'big', 'big_0.mcap');
    await waitFor(() => existsSync(storedBig) && readFileSync(storedBig).equals(big), 'big_0 stored whole', 90_000);
    second.kill('SIGINT');
    expect(await second.exited, second.stderr).toEqual({ code: 0, signal: null });
    const resumed = /"offset":(\d+),"size":16777216,"msg":"resuming big\/big_0\.mcap at/.exec(second.stderr);
    expect(resumed, second.stderr).not.toBeNull();
    // The server's session of the first run goes on: not cancelled, no new one, the held chunks kept.
    expect(Number(resumed![1]) / (1024 * 1024)).toBeGreaterThanOrEqual(sentBefore);
    expect(serverEvents(second.stderr, 'session_cancelled', 'big/big_0.mcap')).toEqual([]);
    expect(serverEvents(second.stderr, 'upload_started', 'big/big_0.mcap')).toEqual([]);
    expect(serverEvents(second.stderr, 'upload_completed', 'big/big_0.mcap')).toHaveLength(1);
  });
});
