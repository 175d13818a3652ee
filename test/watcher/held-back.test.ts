import { appendFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BagWatcher, type HeldBackFile, type ReleasedFile } from '../../agent/watcher/bag-watcher.js';
import { MCAP_MAGIC } from '../../agent/watcher/mcap-magic.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 16 point 2: every file the watcher holds back is visible with its reason (logged at warn
 * once, listed by heldBack()), a split that never closes goes after unclosedTimeout, flagged, and
 * never blocks its bag's metadata.yaml forever; files no rule takes are said once, at info.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempRoot(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'held-back-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** A split as a crashed recorder leaves it: the MCAP header and some records, no closing magic. */
function cutMcap(size = 6000): Buffer {
  return syntheticMcap(size + 100).subarray(0, size);
}

/** Pretends a file was last written `seconds` ago (a crash before this start-up). */
function age(file: string, seconds: number): void {
  const then = new Date(Date.now() - seconds * 1000);
  utimesSync(file, then, then);
}

async function startWatcher(root: string, options: Partial<ConstructorParameters<typeof BagWatcher>[0]> = {}) {
  const logs = captureLogger('debug');
  const watcher = new BagWatcher({
    root,
    settleTime: 1,
    quietPeriod: 0.2,
    rescanInterval: 30,
    unclosedTimeout: 3,
    include: [],
    exclude: [],
    logger: logs.logger,
    ...options,
  });
  const releases: ReleasedFile[] = [];
  const held: HeldBackFile[] = [];
  /** What had been released when each file was held back (read at that moment, not later). */
  const releasedWhenHeld = new Map<string, string[]>();
  const waitingWhenHeld = new Map<string, string | undefined>();
  const errors: Error[] = [];
  watcher.on('release', (file) => {
    releases.push(file);
    // A fast server: verified at once, so metadata.yaml can follow.
    setTimeout(() => watcher.uploaded(file.path, file), 10);
  });
  watcher.on('heldBack', (file) => {
    held.push(file);
    releasedWhenHeld.set(
      file.remotePath,
      releases.map((r) => r.remotePath),
    );
    waitingWhenHeld.set(file.remotePath, watcher.waiting().find((waiting) => waiting.path === file.path)?.heldBack);
  });
  watcher.on('error', (error) => errors.push(error));
  await watcher.start();
  cleanups.push(() => watcher.stop());
  const warnings = (pattern: RegExp) =>
    logs.entries().filter((entry) => entry.level === 40 && pattern.test(String(entry.msg)));
  return { watcher, releases, held, releasedWhenHeld, waitingWhenHeld, errors, logs, warnings };
}

describe('files held back are visible, and a split that never closes goes in the end', { timeout: 120_000 }, () => {
  it('an .mcap without its end magic is held back (warned once), goes flagged; metadata.yaml follows', async () => {
    const root = tempRoot();
    const bag = path.join(root, 'crash');
    mkdirSync(bag);
    writeFileSync(path.join(bag, 'crash_0.mcap'), syntheticMcap(4096));
    writeFileSync(path.join(bag, 'crash_1.mcap'), cutMcap());
    writeFileSync(path.join(bag, 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
    const w = await startWatcher(root, { unclosedTimeout: 4 });
    await waitFor(() => w.held.some((file) => file.code === 'unclosed'), 'held back as unclosed', 20_000);
    const held = w.held.find((file) => file.code === 'unclosed');
    expect(held).toMatchObject({ remotePath: 'crash/crash_1.mcap', code: 'unclosed', bagName: 'crash' });
    expect(held!.reason).toMatch(/never closed: no MCAP end magic, unchanged for .*recovered, unclosed.*4 ?s/);
    // The waiting list carries the reason too (the status shows it).
    expect(w.waitingWhenHeld.get('crash/crash_1.mcap')).toBe('unclosed');
    expect(w.releasedWhenHeld.get('crash/crash_1.mcap')).not.toContain('crash/crash_1.mcap');
    expect(w.releasedWhenHeld.get('crash/crash_1.mcap')).not.toContain('crash/metadata.yaml');
    await waitFor(
      () => w.releases.some((r) => r.role === 'metadata'),
      'the recovered split, then metadata.yaml',
      30_000,
    );
    expect(w.releases.map((r) => r.remotePath)).toEqual([
      'crash/crash_0.mcap',
      'crash/crash_1.mcap',
      'crash/metadata.yaml',
    ]);
    expect(w.releases[0]!.unclosed).toBeUndefined();
    expect(w.releases[1]!.unclosed).toMatch(/no MCAP end magic, unchanged for/);
    expect(w.releases[2]!.unclosed).toBeUndefined();
    expect(w.watcher.heldBack()).toEqual([]);
    // One warning for the hold, however many passes looked at it; one when it went.
    expect(w.warnings(/held back "crash\/crash_1.mcap": never closed/)).toHaveLength(1);
    expect(w.warnings(/uploading crash\/crash_1.mcap as "recovered, unclosed"/)).toHaveLength(1);
    expect(w.held.filter((file) => file.code === 'unclosed')).toHaveLength(1);
    expect(w.errors).toEqual([]);
  });

  it('a 0-byte .mcap is held back as empty and goes in the end; a crash found at start-up goes at once', async () => {
    const root = tempRoot();
    const bag = path.join(root, 'empty');
    mkdirSync(bag);
    writeFileSync(path.join(bag, 'empty_0.mcap'), syntheticMcap(2048));
    writeFileSync(path.join(bag, 'empty_1.mcap'), Buffer.alloc(0));
    const old = path.join(root, 'yesterday');
    mkdirSync(old);
    writeFileSync(path.join(old, 'yesterday_0.mcap'), cutMcap(3000));
    writeFileSync(path.join(old, 'metadata.yaml'), 'x: 1\n');
    age(path.join(old, 'yesterday_0.mcap'), 3600);
    const w = await startWatcher(root, { unclosedTimeout: 600 });
    // Unchanged for an hour before this start: it goes after the quiet period, flagged.
    await waitFor(() => w.releases.some((r) => r.remotePath === 'yesterday/metadata.yaml'), 'the old crash', 20_000);
    expect(w.releases.find((r) => r.remotePath === 'yesterday/yesterday_0.mcap')?.unclosed).toMatch(/unchanged for/);
    // The empty split is new: held back (the timeout is long here), with its reason.
    await waitFor(() => w.watcher.heldBack().some((file) => file.code === 'unclosed'), 'the empty split held', 20_000);
    expect(w.watcher.heldBack()[0]).toMatchObject({ remotePath: 'empty/empty_1.mcap', size: 0 });
    expect(w.watcher.heldBack()[0]!.reason).toMatch(/never closed: empty \(0 bytes\)/);
    expect(w.releases.some((r) => r.remotePath === 'empty/empty_1.mcap')).toBe(false);
    // A shorter timeout at run time lets it go.
    w.watcher.setOptions({ unclosedTimeout: 1 });
    await waitFor(() => w.releases.some((r) => r.remotePath === 'empty/empty_1.mcap'), 'the empty split', 20_000);
  });

  it('a split closing while held back goes as normal; unclosedTimeout 0 never sends an unclosed one', async () => {
    const root = tempRoot();
    mkdirSync(path.join(root, 'late'));
    const late = path.join(root, 'late', 'late_0.mcap');
    writeFileSync(late, cutMcap(5000));
    writeFileSync(path.join(root, 'late', 'late_1.mcap'), syntheticMcap(2048));
    mkdirSync(path.join(root, 'never'));
    writeFileSync(path.join(root, 'never', 'never_0.mcap'), cutMcap(5000));
    age(path.join(root, 'never', 'never_0.mcap'), 3600);
    writeFileSync(path.join(root, 'never', 'metadata.yaml'), 'x: 1\n');
    const w = await startWatcher(root, { unclosedTimeout: 0 });
    await waitFor(() => w.watcher.heldBack().length === 2, 'both held back', 20_000);
    expect(w.watcher.heldBack().find((file) => file.remotePath === 'never/never_0.mcap')?.reason).toMatch(
      /not uploaded \(unclosedTimeout is 0\)/,
    );
    // The recorder was only slow: it writes the end magic now.
    appendFileSync(late, MCAP_MAGIC);
    await waitFor(() => w.releases.some((r) => r.remotePath === 'late/late_0.mcap'), 'late_0 once closed', 20_000);
    expect(w.releases.find((r) => r.remotePath === 'late/late_0.mcap')!.unclosed).toBeUndefined();
    expect(w.watcher.heldBack().map((file) => file.remotePath)).toEqual(['never/never_0.mcap']);
    await w.watcher.rescan();
    expect(w.releases.some((r) => r.remotePath.startsWith('never/'))).toBe(false);
  });

  it('a name the path rule refuses is held back with its reason, no error; metadata.yaml waits for it', async () => {
    const root = tempRoot();
    const bag = path.join(root, 'names');
    mkdirSync(bag);
    writeFileSync(path.join(bag, 'names_0.db3'), Buffer.alloc(4096, 1));
    writeFileSync(path.join(bag, 'bad\nname.mcap'), syntheticMcap(2048));
    writeFileSync(path.join(bag, 'bell\u0007.db3'), Buffer.alloc(100, 2));
    writeFileSync(path.join(bag, 'metadata.yaml'), 'x: 1\n');
    const w = await startWatcher(root);
    await waitFor(() => w.watcher.heldBack().length === 2, 'both bad names held back', 20_000);
    await waitFor(() => w.releases.length === 1, 'the good split', 20_000);
    expect(w.releases.map((r) => r.remotePath)).toEqual(['names/names_0.db3']);
    const held = w.watcher.heldBack();
    expect(held.map((file) => file.code)).toEqual(['unusable-name', 'unusable-name']);
    for (const file of held) expect(file.reason).toMatch(/U\+00(0A|07) .*; rename it to upload it$/);
    // The raw control characters are never logged or shown.
    const shown = held.map((file) => file.remotePath).join('');
    expect(shown.includes('\n') || shown.includes('\u0007'), shown).toBe(false);
    expect(w.warnings(/held back .*rename it to upload it/)).toHaveLength(2);
    expect(w.errors).toEqual([]);
    // Every warning is one JSON line, without a stack trace.
    expect(w.logs.text()).not.toMatch(/\n\s+at /);
    // metadata.yaml means "the bag is complete": it waits until the bad names are gone (renamed, or deleted).
    await w.watcher.rescan();
    expect(w.releases.some((r) => r.role === 'metadata')).toBe(false);
    unlinkSync(path.join(bag, 'bad\nname.mcap'));
    unlinkSync(path.join(bag, 'bell\u0007.db3'));
    await waitFor(() => w.releases.some((r) => r.role === 'metadata'), 'metadata.yaml once they are gone', 20_000);
    expect(w.watcher.heldBack()).toEqual([]);
  });

  it('a file no rule takes is said once at info, with the --include that would take it', async () => {
    const root = tempRoot();
    mkdirSync(path.join(root, 'run'));
    writeFileSync(path.join(root, 'run', 'calibration.json'), '{}');
    const w = await startWatcher(root);
    writeFileSync(path.join(root, 'run', 'notes.txt'), 'field notes');
    const info = () =>
      w.logs
        .entries()
        .filter((entry) => entry.level === 30 && /^ignored /.test(String(entry.msg)))
        .map((entry) => entry.msg);
    await waitFor(() => info().length === 2, 'both files named', 10_000);
    await w.watcher.rescan();
    writeFileSync(path.join(root, 'run', 'notes.txt'), 'more notes');
    await w.watcher.rescan();
    expect(info().sort()).toEqual([
      "ignored run/calibration.json: not a bag file; add --include '*.json' to upload it",
      "ignored run/notes.txt: not a bag file; add --include '*.txt' to upload it",
    ]);
    expect(w.watcher.heldBack()).toEqual([]);
  });
});
