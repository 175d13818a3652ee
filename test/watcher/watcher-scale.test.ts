import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWatcher, type ReleasedFile } from '../../agent/watcher/bag-watcher.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 16 point 5: `watch` was quadratic in the files of a folder (every file judged against the
 * whole folder on every pass, 4 passes a second). The work is counted here, not timed (speed is
 * bench/'s: `npm run bench -- watch`): a folder of 2,000 closed splits costs a few looks per file,
 * and one more file costs a few looks, however many files the folder holds.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const SPLITS = 2000;

describe('the watcher does O(changes) work', { timeout: 180_000 }, () => {
  it('a bag of 2,000 closed splits costs a few looks per file, and one new file a few looks', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'watcher-scale-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const bag = path.join(root, 'day');
    mkdirSync(bag);
    const body = syntheticMcap(256);
    for (let index = 0; index < SPLITS; index += 1) writeFileSync(path.join(bag, `day_${index}.mcap`), body);
    writeFileSync(path.join(bag, 'metadata.yaml'), 'x: 1\n');
    const watcher = new BagWatcher({
      root,
      settleTime: 30,
      quietPeriod: 0.2,
      rescanInterval: 0,
      include: [],
      exclude: [],
    });
    const releases: ReleasedFile[] = [];
    // The engine verifies a few files at a time, as a real uplink does, so the bag stays active
    // (metadata.yaml waiting) through many passes: the old watcher re-judged everything on each.
    const verifying: ReleasedFile[] = [];
    const verifier = setInterval(() => {
      for (const file of verifying.splice(0, 50)) watcher.uploaded(file.path, file);
    }, 20);
    cleanups.push(() => clearInterval(verifier));
    watcher.on('release', (file) => {
      releases.push(file);
      verifying.push(file);
    });
    await watcher.start();
    cleanups.push(() => watcher.stop());
    await waitFor(() => releases.some((file) => file.role === 'metadata'), 'the whole bag released', 150_000);
    expect(releases).toHaveLength(SPLITS + 1);
    expect(releases.slice(0, SPLITS).map((file) => file.index)).toEqual([...Array(SPLITS).keys()]);
    const files = SPLITS + 1;
    const backlog = watcher.counters;
    // Each file: judged when found and once its quiet period is over; one lstat to confirm it.
    expect(backlog.judged).toBeLessThanOrEqual(3 * files);
    expect(backlog.restats).toBeLessThanOrEqual(2 * files);
    // One /proc scan per batch of candidates, not one per file.
    expect(backlog.writerScans).toBeLessThan(20);

    // Recording goes on: one more split costs a handful of looks, not a pass over 2,001 files.
    writeFileSync(path.join(bag, `day_${SPLITS}.mcap`), body);
    await watcher.rescan();
    const before = watcher.counters;
    writeFileSync(path.join(bag, `day_${SPLITS + 1}.mcap`), body);
    await waitFor(() => releases.some((file) => file.index === SPLITS), 'the new split released', 30_000);
    const after = watcher.counters;
    expect(after.judged - before.judged).toBeLessThan(20);
    expect(after.restats - before.restats).toBeLessThan(20);
  });
});
