import { mkdtempSync, rmSync, writeFileSync, mkdirSync, openSync, closeSync, writeSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWatcher, type ReleasedFile, type WithdrawnFile } from '../../agent/watcher/bag-watcher.js';
import {
  BagWriter,
  fixtureBag,
  replayTimeline,
  syntheticMcap,
  TIMELINES,
  type TimelineName,
} from '../helpers/bag-writer.js';
import { waitFor } from '../helpers/wait-for.js';

interface Release extends ReleasedFile {
  at: number;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'watcher-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/**
 * Starts a watcher whose "engine" verifies each released file at once (as a fast server
 * would), so metadata.yaml can follow. Returns the releases in order, with their times.
 */
async function startWatcher(
  root: string,
  options: Partial<ConstructorParameters<typeof BagWatcher>[0]> = {},
  autoVerify = true,
) {
  const watcher = new BagWatcher({
    root,
    settleTime: 30,
    quietPeriod: 1,
    rescanInterval: 30,
    include: [],
    exclude: [],
    ...options,
  });
  const releases: Release[] = [];
  const withdrawn: WithdrawnFile[] = [];
  const errors: Error[] = [];
  watcher.on('release', (file) => {
    releases.push({ ...file, at: performance.now() });
    if (autoVerify) setTimeout(() => watcher.uploaded(file.path, file), 20);
  });
  watcher.on('withdraw', (file) => withdrawn.push(file));
  watcher.on('error', (error) => errors.push(error));
  await watcher.start();
  cleanups.push(() => watcher.stop());
  return { watcher, releases, withdrawn, errors };
}

describe('replaying the real rosbag2 timelines', { timeout: 120_000 }, () => {
  for (const name of Object.keys(TIMELINES) as TimelineName[]) {
    it(`${name}: releases each split once, only after it was closed, in index order, metadata.yaml last`, async () => {
      const root = tempRoot();
      const { releases, errors, watcher } = await startWatcher(root);
      const writer = await replayTimeline(name, root);
      const bag = TIMELINES[name].bag;
      const expected = [...fixtureBag(bag).keys()].map((file) => `${bag}/${file}`).sort();
      await waitFor(
        () => releases.length >= expected.length && releases.some((r) => r.role === 'metadata'),
        `all of ${bag} released`,
        20_000,
      );
      // Give a late duplicate a chance to show up.
      await watcher.rescan();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(errors).toEqual([]);
      expect(releases.map((r) => r.remotePath).sort()).toEqual(expected);
      for (const release of releases) {
        const record = writer.log.files.get(release.remotePath)!;
        expect(record.closedAt, `${release.remotePath} closed`).toBeDefined();
        expect(release.at, `${release.remotePath} released after its close`).toBeGreaterThan(record.closedAt!);
        expect(release.size).toBe(record.content.length);
        expect(readFileSync(release.path).equals(fixtureBag(bag).get(path.basename(release.path))!)).toBe(true);
      }
      const splits = releases.filter((r) => r.role === 'split').map((r) => r.index);
      expect(splits).toEqual([...splits].sort((a, b) => a! - b!));
      expect(releases[releases.length - 1]!.role).toBe('metadata');
      if (name === 'mcap-zstd')
        expect(releases.every((r) => r.remotePath.endsWith('.zstd') || r.role === 'metadata')).toBe(true);
    });
  }
});

describe('closing rules on real files', { timeout: 120_000 }, () => {
  it('the closing race stretched to seconds: a split written after the next is released when closed', async () => {
    const root = tempRoot();
    const { releases } = await startWatcher(root);
    const writer = await replayTimeline('mcap', root, { lingerMs: 2500 });
    await waitFor(() => releases.some((r) => r.role === 'metadata'), 'metadata released', 20_000);
    for (const release of releases) {
      const record = writer.log.files.get(release.remotePath)!;
      expect(release.at).toBeGreaterThan(record.closedAt!);
      // The writer really kept writing long after the next split existed.
      if (release.index !== undefined && release.index < 3) {
        const next = writer.log.files.get(
          release.remotePath.replace(/_(\d+)\.mcap$/, (_, n: string) => `_${Number(n) + 1}.mcap`),
        )!;
        expect(record.closedAt! - next.createdAt).toBeGreaterThan(2000);
      }
    }
    expect(releases).toHaveLength(5);
  });

  it('never releases a file that is still growing, even one whose next split exists', async () => {
    const root = tempRoot();
    const { releases, watcher } = await startWatcher(root, { settleTime: 1 });
    const writer = new BagWriter(root, { growInterval: 100 });
    cleanups.push(() => writer.closeAll());
    await writer.create('g/g_0.mcap', syntheticMcap(64 * 1024));
    await writer.create('g/g_1.mcap', syntheticMcap(64 * 1024));
    const end = performance.now() + 4000;
    while (performance.now() < end) {
      await writer.append('g/g_0.mcap', Buffer.alloc(16, 1));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(releases).toEqual([]);
    expect(
      watcher
        .waiting()
        .map((w) => w.remotePath)
        .sort(),
    ).toEqual(['g/g_0.mcap', 'g/g_1.mcap']);
    await writer.close('g/g_0.mcap');
    await waitFor(() => releases.length === 1, 'g_0 released after its close', 10_000);
    expect(releases[0]!.remotePath).toBe('g/g_0.mcap');
    expect(releases[0]!.at).toBeGreaterThan(writer.log.closedAt('g/g_0.mcap')!);
  });

  it('does not release a settled file that a process still holds open for writing (/proc)', async () => {
    const root = tempRoot();
    const { releases, watcher } = await startWatcher(root, { settleTime: 0.5, quietPeriod: 0.2 });
    mkdirSync(path.join(root, 'h'));
    const fd = openSync(path.join(root, 'h', 'h_0.db3'), 'w');
    cleanups.push(() => {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    });
    writeSync(fd, Buffer.alloc(4096, 2));
    await waitFor(
      () => watcher.waiting().some((w) => /held open for writing/.test(w.reason)),
      'writer detected',
      10_000,
    );
    expect(releases).toEqual([]);
    closeSync(fd);
    await waitFor(() => releases.length === 1, 'released once closed', 10_000);
  });

  it('does not release an MCAP without its end magic', async () => {
    const root = tempRoot();
    mkdirSync(path.join(root, 'c'));
    const cut = syntheticMcap(8192).subarray(0, 6000);
    writeFileSync(path.join(root, 'c', 'c_0.mcap'), cut);
    writeFileSync(path.join(root, 'c', 'c_1.mcap'), syntheticMcap(2048));
    const { releases, watcher } = await startWatcher(root, { quietPeriod: 0.2 });
    await waitFor(
      () => watcher.waiting().some((w) => /no MCAP end magic/.test(w.reason)),
      'missing magic reported',
      10_000,
    );
    expect(releases).toEqual([]);
  });

  it('markClosed matches by bag folder and file name, even before the file is seen', async () => {
    const root = tempRoot();
    const { releases, watcher } = await startWatcher(root, { quietPeriod: 0.2 });
    // The recorder ran with a relative -o: its paths are relative to its own cwd.
    expect(watcher.markClosed('rel_bag/rel_bag_0.db3')).toBe(false);
    mkdirSync(path.join(root, 'rel_bag'));
    writeFileSync(path.join(root, 'rel_bag', 'rel_bag_0.db3'), Buffer.alloc(1000, 3));
    await waitFor(() => releases.length === 1, 'pending mark applied', 10_000);
    writeFileSync(path.join(root, 'rel_bag', 'rel_bag_1.db3'), Buffer.alloc(1000, 3));
    await waitFor(
      () => watcher.phaseOf(path.join(watcher.root, 'rel_bag', 'rel_bag_1.db3')) === 'open',
      'split 1 seen',
      10_000,
    );
    expect(watcher.markClosed('/elsewhere/other_bag/rel_bag_1.db3')).toBe(false);
    expect(watcher.markClosed('/some/recorder/cwd/rel_bag/rel_bag_1.db3')).toBe(true);
    await waitFor(() => releases.length === 2, 'marked split released', 10_000);
    expect(releases.map((r) => r.signal)).toEqual(['marked', 'marked']);
  });

  it('finds the backlog at start-up, skips verified files, and uploads a changed file again with replace', async () => {
    const root = tempRoot();
    const bag = fixtureBag('mcap_plain');
    mkdirSync(path.join(root, 'mcap_plain'));
    for (const [name, bytes] of bag) writeFileSync(path.join(root, 'mcap_plain', name), bytes);
    writeFileSync(path.join(root, 'mcap_plain', 'mcap_plain_0.db3-wal'), 'x');
    writeFileSync(path.join(root, 'loose.txt'), 'not a bag file');
    const verified = new Set(['mcap_plain_0.mcap', 'mcap_plain_1.mcap']);
    const { releases, watcher } = await startWatcher(root, {
      quietPeriod: 0.2,
      isUploaded: (file) => verified.has(path.basename(file)),
      wasUploaded: (file) => path.basename(file) === 'mcap_plain_2.mcap',
    });
    await waitFor(() => releases.some((r) => r.role === 'metadata'), 'backlog released', 15_000);
    expect(releases.map((r) => path.basename(r.path))).toEqual([
      'mcap_plain_2.mcap',
      'mcap_plain_3.mcap',
      'metadata.yaml',
    ]);
    expect(releases[0]!.replace).toBe(true);
    expect(releases[1]!.replace).toBe(false);

    // A file that changes during its upload goes back to confirmation and is released again, with replace.
    const target = releases[1]!;
    watcher.changedDuringUpload(target.path);
    await waitFor(() => releases.length === 4, 're-release', 10_000);
    expect(releases[3]).toMatchObject({ path: target.path, replace: true });
  });

  it('withdraws a released plain split when its .zstd appears, and releases only the .zstd', async () => {
    const root = tempRoot();
    const { releases, withdrawn } = await startWatcher(root, { quietPeriod: 0.2 }, false);
    const writer = new BagWriter(root);
    await writer.writeWhole('z/z_0.mcap', syntheticMcap(4096));
    await writer.create('z/z_1.mcap', syntheticMcap(4096));
    cleanups.push(() => writer.closeAll());
    // A slow compressor: the plain split is closed and confirmed long before its .zstd shows up.
    await waitFor(() => releases.length === 1, 'plain split released', 10_000);
    await writer.writeWhole('z/z_0.mcap.zstd', Buffer.from('28b52ffd00', 'hex'));
    await waitFor(() => withdrawn.length === 1, 'plain split withdrawn', 10_000);
    expect(withdrawn[0]!.remotePath).toBe('z/z_0.mcap');
    await writer.delete('z/z_0.mcap');
    await waitFor(() => releases.length === 2, '.zstd released', 10_000);
    expect(releases[1]!.remotePath).toBe('z/z_0.mcap.zstd');
  });

  it('uploads extra files chosen by include globs and skips excluded folders', async () => {
    const root = tempRoot();
    mkdirSync(path.join(root, 'run', 'scratch'), { recursive: true });
    writeFileSync(path.join(root, 'run', 'notes.json'), '{}');
    writeFileSync(path.join(root, 'run', 'scratch', 'scratch_0.db3'), 'x');
    writeFileSync(path.join(root, 'run', 'metadata.yaml'), 'y');
    const { releases } = await startWatcher(root, { quietPeriod: 0.2, include: ['*.json'], exclude: ['scratch'] });
    await waitFor(() => releases.length === 2, 'notes and metadata', 10_000);
    expect(releases.map((r) => r.remotePath)).toEqual(['run/notes.json', 'run/metadata.yaml']);
  });
});
