import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWriter, replayTimeline, syntheticMcap } from '../helpers/bag-writer.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHarness, type Harness } from './support/agent-harness.js';

/** Acceptance: nothing half-written ever reaches the server. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function harnessWith(config: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const harness = await startHarness(config);
  cleanups.push(() => harness.close());
  return harness;
}

function writerIn(root: string, growInterval = 150): BagWriter {
  const writer = new BagWriter(root, { growInterval });
  cleanups.push(() => writer.closeAll());
  return writer;
}

describe('closing race and changed files', { timeout: 180_000 }, () => {
  it('a split written for seconds after the next split appears is uploaded only once it is really closed', async () => {
    const h = await harnessWith();
    const writer = await replayTimeline('mcap', h.root, { lingerMs: 3000 });
    const remotes = [0, 1, 2, 3].map((n) => `mcap_plain/mcap_plain_${n}.mcap`);
    await waitFor(
      () => [...remotes, 'mcap_plain/metadata.yaml'].every((remote) => h.stored(remote)),
      'the bag on the server',
      30_000,
    );
    for (const remote of remotes) {
      const record = writer.log.files.get(remote)!;
      const sessions = h.proxy.uploadsFor(remote);
      expect(sessions).toHaveLength(1);
      expect(sessions[0]!.startedAt, `${remote} uploaded after its close`).toBeGreaterThan(record.closedAt!);
    }
    // The race really was stretched: split 1 was still being written 2.5 s after split 2 appeared.
    const split1 = writer.log.files.get(remotes[1]!)!;
    const split2 = writer.log.files.get(remotes[2]!)!;
    expect(split1.writes.filter((t) => t > split2.createdAt + 2500).length).toBeGreaterThan(0);
  });

  it('a file modified during its upload is uploaded again and only its final version counts', async () => {
    const h = await harnessWith({ bandwidthLimit: 128 * 1024, chunkSize: 64 * 1024 });
    const writer = writerIn(h.root);
    const remote = 'm/m_0.db3';
    const original = Buffer.alloc(1024 * 1024, 7);
    await writer.writeWhole(remote, original);
    await writer.create('m/m_1.db3', Buffer.alloc(4096, 1));
    await waitFor(() => h.proxy.chunkBytesFor(remote) > 0, 'the upload of m_0 under way', 20_000);
    // Another process rewrites part of the "closed" file while it is being uploaded.
    const handle = await open(path.join(h.root, remote), 'r+');
    await handle.write(Buffer.alloc(1000, 9), 0, 1000, 500_000);
    await handle.close();
    const final = readFileSync(path.join(h.root, remote));
    expect(final.equals(original)).toBe(false);
    await waitFor(() => h.stored(remote)?.equals(final), 'the final version on the server', 60_000);
    expect(h.proxy.uploadsFor(remote).length).toBeGreaterThanOrEqual(2);
    // Once stable, the final version is done: a restart does not upload it again.
    await waitFor(
      () => h.agent.watcher!.phaseOf(path.join(h.agent.watcher!.root, remote)) === 'uploaded',
      'recorded as uploaded',
      20_000,
    );
    const before = h.proxy.uploadsFor(remote).length;
    await h.restart();
    await h.agent.watcher!.rescan();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(h.proxy.uploadsFor(remote)).toHaveLength(before);
  });

  it('a file that is still growing is never uploaded', async () => {
    const h = await harnessWith({ settleTime: 1 });
    const writer = writerIn(h.root);
    await writer.create('g/g_0.mcap', syntheticMcap(256 * 1024));
    await writer.create('g/g_1.mcap', syntheticMcap(64 * 1024));
    const until = performance.now() + 5000;
    while (performance.now() < until) {
      await writer.append('g/g_0.mcap', Buffer.alloc(100, 5));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(h.proxy.uploadsFor('g/g_0.mcap')).toHaveLength(0);
    expect(h.proxy.uploadsFor('g/g_1.mcap')).toHaveLength(0);
    expect(
      h.agent
        .status()
        .uploads.filter((u) => u.state === 'waiting_for_close')
        .map((u) => u.remotePath)
        .sort(),
    ).toEqual(['g/g_0.mcap', 'g/g_1.mcap']);
    await writer.close('g/g_0.mcap');
    const closedAt = writer.log.closedAt('g/g_0.mcap')!;
    // The server stores the file before its answer reaches the proxy: wait for both.
    await waitFor(
      () => h.stored('g/g_0.mcap') && h.proxy.uploadsFor('g/g_0.mcap').length > 0,
      'g_0 uploaded once closed',
      20_000,
    );
    expect(h.proxy.uploadsFor('g/g_0.mcap')[0]!.startedAt).toBeGreaterThan(closedAt);
    expect(h.stored('g/g_0.mcap')!.equals(writer.log.files.get('g/g_0.mcap')!.content)).toBe(true);
    expect(h.proxy.uploadsFor('g/g_1.mcap')).toHaveLength(0);
  });
});

describe('file compression mode', { timeout: 180_000 }, () => {
  it('cancels a plain split whose .zstd appears mid-upload, drops its session, uploads only the .zstd', async () => {
    const h = await harnessWith({ bandwidthLimit: 64 * 1024, chunkSize: 32 * 1024 });
    const writer = writerIn(h.root);
    await writer.writeWhole('z/z_0.mcap', syntheticMcap(512 * 1024));
    await writer.create('z/z_1.mcap', syntheticMcap(8 * 1024));
    // A slow compressor: the plain split is closed and being uploaded before its .zstd shows up.
    await waitFor(() => h.proxy.chunkBytesFor('z/z_0.mcap') > 0, 'the plain split being uploaded', 20_000);
    const session = h.proxy.uploadsFor('z/z_0.mcap')[0]!.sessionId!;
    const compressed = Buffer.concat([Buffer.from('28b52ffd', 'hex'), Buffer.alloc(3000, 4)]);
    await writer.writeWhole('z/z_0.mcap.zstd', compressed);
    await writer.delete('z/z_0.mcap');
    await waitFor(() => h.stored('z/z_0.mcap.zstd')?.equals(compressed), 'the .zstd on the server', 30_000);
    await waitFor(
      () =>
        h.proxy.requests.some(
          (r) => r.method === 'DELETE' && r.sessionId === session && r.status !== undefined && r.status < 300,
        ),
      'the plain split session dropped',
      10_000,
    );
    expect(h.proxy.completionsFor('z/z_0.mcap')).toHaveLength(0);
    expect(h.stored('z/z_0.mcap')).toBeUndefined();
    // The replayed compression timeline: no plain .mcap session at all.
    const replay = await replayTimeline('mcap-zstd', h.root);
    await waitFor(() => h.stored('mcap_zstd/metadata.yaml'), 'the compressed bag on the server', 30_000);
    expect(
      h.proxy.uploadsFor().filter((r) => r.path?.startsWith('mcap_zstd/') && r.path.endsWith('.mcap')),
    ).toHaveLength(0);
    expect(
      replay.log
        .surviving()
        .filter((f) => f.startsWith('mcap_zstd/'))
        .every((f) => h.stored(f)?.equals(replay.log.files.get(f)!.content)),
    ).toBe(true);
  });
});
