import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWriter, syntheticMcap } from '../helpers/bag-writer.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { spawnAgent, type SpawnedAgent } from './support/spawn-agent.js';

/**
 * The Ctrl-C of `ros2 launch record_and_upload`: the recorder and the agent get SIGINT at once,
 * and the recorder closes its last split and writes metadata.yaml while the agent is stopping.
 * The real program (`watch`) keeps uploading what closes for at most drainTimeout, then exits 0;
 * what is left is uploaded at the next start. A test writer plays the recorder, in rosbag2's
 * order (metadata.yaml before the last split is closed).
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  root: string;
  server: TestServer;
  writer: BagWriter;
  stored(remote: string): Buffer | undefined;
  agent(extra?: string[]): SpawnedAgent;
}

async function setup(): Promise<Setup> {
  const dir = await createTempDir('agent-drain');
  cleanups.push(() => dir.remove());
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const root = path.join(dir.path, 'bags');
  mkdirSync(root);
  const writer = new BagWriter(root);
  cleanups.push(() => writer.closeAll());
  const state = path.join(dir.path, 'state');
  return {
    root,
    server,
    writer,
    stored(remote) {
      const file = server.completedPath('anonymous', remote);
      return existsSync(file) ? readFileSync(file) : undefined;
    },
    agent(extra = []) {
      const child = spawnAgent([
        'watch',
        root,
        '--server',
        server.url,
        '--state-dir',
        state,
        '--quiet-period',
        '0.2',
        '--log-level',
        'debug',
        ...extra,
      ]);
      cleanups.push(async () => {
        child.kill('SIGKILL');
        await child.exited;
      });
      return child;
    },
  };
}

/** The bag of a recorder that is still running: split 0 closed, split 1 being written. */
async function recording(s: Setup, bag: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>([
    [`${bag}/${bag}_0.mcap`, syntheticMcap(200_000)],
    [`${bag}/${bag}_1.mcap`, syntheticMcap(300_000)],
    [`${bag}/metadata.yaml`, Buffer.from(`rosbag2_bagfile_information:\n  version: 9\n  relative_file_paths: []\n`)],
  ]);
  await s.writer.mkdir(bag);
  await s.writer.writeWhole(`${bag}/${bag}_0.mcap`, files.get(`${bag}/${bag}_0.mcap`)!);
  await s.writer.create(`${bag}/${bag}_1.mcap`, files.get(`${bag}/${bag}_1.mcap`)!);
  return files;
}

/** The agent recorded this file as verified (its watcher knows it at the same moment). */
function verified(agent: SpawnedAgent, remote: string): boolean {
  return agent.stderr
    .split('\n')
    .some((line) => line.includes('"msg":"uploaded and verified"') && line.includes(`"remotePath":"${remote}"`));
}

/** What rosbag2 does when it stops: metadata.yaml first, then the last split is closed. */
async function recorderStops(s: Setup, bag: string, files: Map<string, Buffer>): Promise<void> {
  await s.writer.writeWhole(`${bag}/metadata.yaml`, files.get(`${bag}/metadata.yaml`)!);
  await s.writer.close(`${bag}/${bag}_1.mcap`);
}

describe('stopping the watch program while a recording closes', { timeout: 180_000 }, () => {
  it('on SIGINT it uploads the last split and metadata.yaml the recorder writes, then exits 0', async () => {
    const s = await setup();
    const files = await recording(s, 'run1');
    const agent = s.agent(['--drain-timeout', '120']);
    await waitFor(() => s.stored('run1/run1_0.mcap'), 'the closed split uploaded while recording', 60_000);

    agent.kill('SIGINT');
    await waitFor(() => agent.stderr.includes('draining: uploading what the recorder closes'), 'the drain', 30_000);
    await recorderStops(s, 'run1', files);

    const exit = await agent.exited;
    expect(exit.code, agent.stderr).toBe(0);
    for (const [remote, bytes] of files) expect(s.stored(remote)?.equals(bytes), `${remote} byte-identical`).toBe(true);
    expect(agent.stderr).toContain('drained: every file of those recordings is uploaded');
  });

  it('waits for metadata.yaml even when the last split is uploaded first (file compression order)', async () => {
    const s = await setup();
    const files = await recording(s, 'run4');
    const agent = s.agent(['--drain-timeout', '120']);
    await waitFor(() => verified(agent, 'run4/run4_0.mcap'), 'the closed split uploaded while recording', 60_000);
    let exited = false;
    void agent.exited.then(() => (exited = true));

    agent.kill('SIGINT');
    await waitFor(() => agent.stderr.includes('draining: uploading what the recorder closes'), 'the drain', 30_000);
    // With --compression-mode file the recorder compresses the last split, and only then writes
    // metadata.yaml: the last split can be uploaded before metadata.yaml exists.
    await s.writer.close('run4/run4_1.mcap');
    await waitFor(() => verified(agent, 'run4/run4_1.mcap'), 'the last split uploaded during the drain', 60_000);
    // The drain cannot have ended: metadata.yaml is missing and the drain time is far off.
    expect(exited, agent.stderr).toBe(false);
    expect(agent.stderr).not.toContain('drained:');

    await s.writer.writeWhole('run4/metadata.yaml', files.get('run4/metadata.yaml')!);
    const exit = await agent.exited;
    expect(exit.code, agent.stderr).toBe(0);
    for (const [remote, bytes] of files) expect(s.stored(remote)?.equals(bytes), `${remote} byte-identical`).toBe(true);
    expect(agent.stderr).toContain('drained: every file of those recordings is uploaded');
  });

  it('what does not close within drainTimeout is left, and the next start uploads it', async () => {
    const s = await setup();
    const files = await recording(s, 'run2');
    const first = s.agent(['--drain-timeout', '1']);
    await waitFor(() => verified(first, 'run2/run2_0.mcap'), 'the closed split uploaded while recording', 60_000);

    // The recorder goes on writing split 1 (a recorder that did not get the signal).
    first.kill('SIGTERM');
    const exit = await first.exited;
    expect(exit.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('drain time (1 s) over: 2 file(s) not uploaded yet; the next start uploads them');
    expect(s.stored('run2/run2_1.mcap')).toBeUndefined();

    await recorderStops(s, 'run2', files);
    const second = s.agent();
    await waitFor(() => s.stored('run2/metadata.yaml'), 'the bag completed by the next start', 60_000);
    for (const [remote, bytes] of files) expect(s.stored(remote)?.equals(bytes), `${remote} byte-identical`).toBe(true);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('a second signal ends the drain at once; the program still exits 0', async () => {
    const s = await setup();
    await recording(s, 'run3');
    const agent = s.agent(['--drain-timeout', '3600']);
    await waitFor(() => verified(agent, 'run3/run3_0.mcap'), 'the closed split uploaded while recording', 60_000);

    agent.kill('SIGINT');
    await waitFor(() => agent.stderr.includes('draining: uploading what the recorder closes'), 'the drain', 30_000);
    // What ros2 launch sends when its sigterm_timeout is over.
    agent.kill('SIGTERM');
    const exit = await agent.exited;
    expect(exit.code, agent.stderr).toBe(0);
    expect(agent.stderr).toContain('SIGTERM again: skipping the rest of the drain');
    expect(agent.stderr).toContain('drain cut short: 2 file(s) not uploaded yet');
  });
});
