import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWriter, fixtureBag, replayTimeline, syntheticMcap } from '../helpers/bag-writer.js';
import { uploadFile } from '../helpers/native-upload.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHarness, type Harness } from './support/agent-harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function harnessWith(...args: Parameters<typeof startHarness>): Promise<Harness> {
  const harness = await startHarness(...args);
  cleanups.push(() => harness.close());
  return harness;
}

/** Polls which files exist and records when each one vanished (performance.now()). */
function watchDeletions(root: string, files: string[]): { deletedAt: Map<string, number>; stop: () => void } {
  const deletedAt = new Map<string, number>();
  const seen = new Set<string>();
  const poll = (): void => {
    for (const file of files) {
      if (existsSync(path.join(root, file))) seen.add(file);
      else if (seen.has(file) && !deletedAt.has(file)) deletedAt.set(file, performance.now());
    }
  };
  const timer = setInterval(poll, 20);
  return {
    deletedAt,
    stop: () => {
      clearInterval(timer);
      poll();
    },
  };
}

describe('after-upload policy', { timeout: 180_000 }, () => {
  it('delete removes only files the server verified, then the emptied bag folder', async () => {
    const h = await harnessWith({ afterUpload: 'delete', quietPeriod: 0.5 });
    // A different file is already on the server at c/c_0.mcap: ours is refused (FILE_EXISTS) and must stay.
    const other = path.join(os.tmpdir(), `other-${process.pid}.mcap`);
    writeFileSync(other, syntheticMcap(2048));
    cleanups.push(async () => {
      await import('node:fs/promises').then((fs) => fs.rm(other, { force: true }));
    });
    const seeded = await uploadFile(h.server.url, other, 'c/c_0.mcap');
    expect(seeded.complete.status).toBe(200);
    const writer = new BagWriter(h.root);
    cleanups.push(() => writer.closeAll());
    await writer.writeWhole('c/c_0.mcap', syntheticMcap(4096));
    await writer.writeWhole('c/metadata.yaml', Buffer.from('rosbag2_bagfile_information: {}\n'));
    // A split still being recorded.
    await writer.create('o/o_0.mcap', syntheticMcap(64 * 1024));

    const bag = [...fixtureBag('mcap_plain').keys()].map((file) => `mcap_plain/${file}`);
    const deletions = watchDeletions(h.root, [...bag, 'c/c_0.mcap', 'c/metadata.yaml', 'o/o_0.mcap']);
    cleanups.push(async () => deletions.stop());
    await replayTimeline('mcap', h.root);
    await waitFor(() => !existsSync(path.join(h.root, 'mcap_plain')), 'the uploaded bag folder removed', 30_000);
    await waitFor(
      () => h.agent.status().uploads.some((u) => u.remotePath === 'c/c_0.mcap' && u.state === 'failed'),
      'the conflicting file failed',
      20_000,
    );
    deletions.stop();

    for (const remote of bag) {
      expect(
        h.stored(remote)?.equals(fixtureBag('mcap_plain').get(path.basename(remote))!),
        `${remote} on the server`,
      ).toBe(true);
      const deleted = deletions.deletedAt.get(remote);
      expect(deleted, `${remote} deleted`).toBeDefined();
      expect(deleted!, `${remote} deleted only after its verified completion`).toBeGreaterThan(
        h.proxy.completionsFor(remote)[0]!.finishedAt!,
      );
    }
    expect(existsSync(path.join(h.root, 'c', 'c_0.mcap')), 'the refused file stays').toBe(true);
    expect(h.stored('c/c_0.mcap')?.equals(readFileSync(other))).toBe(true);
    expect(existsSync(path.join(h.root, 'c', 'metadata.yaml')), 'its bag metadata waits for it').toBe(true);
    expect(existsSync(path.join(h.root, 'o', 'o_0.mcap')), 'the split being recorded stays').toBe(true);
  });

  it('move keeps the bag structure under <root>/.uploaded and never uploads the moved files again', async () => {
    const h = await harnessWith({ afterUpload: 'move', quietPeriod: 0.3 });
    mkdirSync(path.join(h.root, 'sqlite_plain'), { recursive: true });
    for (const [name, bytes] of fixtureBag('sqlite_plain'))
      writeFileSync(path.join(h.root, 'sqlite_plain', name), bytes);
    const moved = path.join(h.root, '.uploaded', 'sqlite_plain');
    await waitFor(() => existsSync(path.join(moved, 'metadata.yaml')), 'the bag moved', 30_000);
    for (const [name, bytes] of fixtureBag('sqlite_plain')) {
      expect(readFileSync(path.join(moved, name)).equals(bytes)).toBe(true);
      expect(h.stored(`sqlite_plain/${name}`)?.equals(bytes)).toBe(true);
    }
    // The emptied bag folder goes after its metadata.yaml moved (and the move was made durable).
    await waitFor(() => !existsSync(path.join(h.root, 'sqlite_plain')), 'the emptied bag folder removed');
    await h.agent.watcher!.rescan();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(h.proxy.uploadsFor().every((r) => !r.path?.startsWith('.uploaded'))).toBe(true);
    expect(h.proxy.uploadsFor()).toHaveLength(fixtureBag('sqlite_plain').size);
  });
});

describe('disk guard', { timeout: 180_000 }, () => {
  it('below minFreeSpace it deletes verified files oldest first, and never a file that was not uploaded', async () => {
    const capacity = { bytes: Number.MAX_SAFE_INTEGER };
    const usedBytes = (root: string): number => {
      let total = 0;
      const walk = (dir: string): void => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          const full = path.join(dir, entry.name);
          if (entry.isDirectory()) walk(full);
          else total += statSync(full).size;
        }
      };
      walk(root);
      return total;
    };
    const h = await harnessWith(
      { minFreeSpace: 100_000, deleteUploadedWhenLow: true, diskCheckInterval: 0.2, quietPeriod: 0.3 },
      { freeSpace: async (dir) => capacity.bytes - usedBytes(dir) },
    );
    // Bag "old": uploaded and verified.
    mkdirSync(path.join(h.root, 'old'));
    const oldFiles = ['old_0.db3', 'old_1.db3', 'old_2.db3', 'metadata.yaml'];
    for (const [i, name] of oldFiles.entries()) {
      writeFileSync(path.join(h.root, 'old', name), Buffer.alloc(40_000, i));
    }
    await waitFor(() => oldFiles.every((name) => h.stored(`old/${name}`)), 'the old bag uploaded', 30_000);
    await waitFor(
      () =>
        oldFiles.every(
          (name) => h.agent.watcher!.phaseOf(path.join(h.agent.watcher!.root, 'old', name)) === 'uploaded',
        ),
      'the old bag recorded',
      10_000,
    );
    // Bag "new": closed but not uploaded (uploads paused), and a split still being recorded.
    h.agent.pause();
    mkdirSync(path.join(h.root, 'new'));
    for (const name of ['new_0.db3', 'new_1.db3', 'metadata.yaml'])
      writeFileSync(path.join(h.root, 'new', name), Buffer.alloc(60_000, 9));
    const writer = new BagWriter(h.root);
    cleanups.push(() => writer.closeAll());
    await writer.create('rec/rec_0.mcap', syntheticMcap(50_000));
    await waitFor(
      () => h.agent.status().uploads.some((u) => u.remotePath === 'new/new_0.db3' && u.state !== 'waiting_for_close'),
      'the new bag queued',
      10_000,
    );

    // The disk fills up: 70 kB free, 100 kB wanted. Deleting the two oldest verified files is enough.
    capacity.bytes = usedBytes(h.root) + 70_000;
    await waitFor(
      () => h.agent.status().lowDisk === false && !existsSync(path.join(h.root, 'old', 'old_0.db3')),
      'space freed',
      10_000,
    );
    const remaining = oldFiles.filter((name) => existsSync(path.join(h.root, 'old', name)));
    expect(remaining.length, 'only as many verified files as needed were deleted').toBeGreaterThan(0);
    expect(remaining.length).toBeLessThan(oldFiles.length);
    for (const name of ['new_0.db3', 'new_1.db3', 'metadata.yaml'])
      expect(existsSync(path.join(h.root, 'new', name)), `new/${name} kept`).toBe(true);
    expect(existsSync(path.join(h.root, 'rec', 'rec_0.mcap'))).toBe(true);

    // Nothing verified is left to delete: the guard warns in the status and touches nothing else.
    capacity.bytes = usedBytes(h.root) - 120_000;
    await waitFor(() => h.agent.status().lowDisk, 'low disk reported', 10_000);
    // Every verified file of the finished bag is used up, and its emptied folder goes with its metadata.yaml.
    await waitFor(
      () => !existsSync(path.join(h.root, 'old')),
      'every verified file used up and the bag folder removed',
      10_000,
    );
    expect(h.agent.status().lowDisk).toBe(true);
    expect(h.agent.status().freeDiskBytes).toBeLessThan(100_000);
    for (const name of ['new_0.db3', 'new_1.db3', 'metadata.yaml'])
      expect(existsSync(path.join(h.root, 'new', name)), `new/${name} still kept`).toBe(true);
    expect(existsSync(path.join(h.root, 'rec', 'rec_0.mcap'))).toBe(true);
    // And the queued files still upload once resumed.
    h.agent.resume();
    await waitFor(
      () => ['new_0.db3', 'new_1.db3', 'metadata.yaml'].every((name) => h.stored(`new/${name}`)),
      'the new bag uploaded',
      30_000,
    );
  });
});
