import { describe, expect, it } from 'vitest';
import { classifyFile } from '../../agent/watcher/bag-files.js';
import { closingBlocker, closingSignal, isTransientPlain } from '../../agent/watcher/closing-rules.js';
import { FolderIndex } from '../../agent/watcher/folder-index.js';
import type { FilePhase, TrackedFile } from '../../agent/watcher/tracked-file.js';

const NOW = 100_000;
const clock = { now: NOW, settleMs: 30_000 };

function file(relPath: string, phase: FilePhase = 'open', stableFor = 0): TrackedFile {
  return {
    ...classifyFile(relPath),
    path: `/root/${relPath}`,
    relPath,
    remotePath: relPath,
    bagName: 'b',
    size: 1,
    mtimeMs: 1,
    ino: 1,
    stableSince: NOW - stableFor,
    seenAt: NOW,
    settledSince: NOW - stableFor,
    marked: false,
    signal: undefined,
    phase,
    reason: '',
    replace: false,
    magic: undefined,
    firstSeen: 0,
    dueAt: Number.POSITIVE_INFINITY,
    heldBack: undefined,
    unclosed: undefined,
    fresh: false,
  };
}

/** A folder's index holding these files. */
function folderOf(...files: TrackedFile[]): FolderIndex {
  const folder = new FolderIndex('b');
  for (const each of files) folder.add(each);
  return folder;
}

describe('closing signals', () => {
  it('a later split means closing, compared numerically (_10 after _9)', () => {
    const nine = file('b/b_9.mcap');
    const ten = file('b/b_10.mcap');
    const folder = folderOf(ten, nine);
    expect(closingSignal(nine, folder, clock)).toBe('later-split');
    expect(closingSignal(ten, folder, clock)).toBeUndefined();
    // A later split in compressed form counts too.
    expect(closingSignal(nine, folderOf(nine, file('b/b_10.mcap.zstd')), clock)).toBe('later-split');
    // A split that goes takes its signal with it.
    folder.remove(ten);
    expect(closingSignal(nine, folder, clock)).toBeUndefined();
  });

  it('metadata.yaml means the last split is closing; a marked file is closing; settling is the fallback', () => {
    const last = file('b/b_3.db3');
    expect(closingSignal(last, folderOf(last, file('b/metadata.yaml')), clock)).toBe('metadata');
    expect(closingSignal(file('b/metadata.yaml'), folderOf(), clock)).toBe('metadata');
    const marked = file('b/b_3.db3');
    marked.marked = true;
    expect(closingSignal(marked, folderOf(marked), clock)).toBe('marked');
    expect(closingSignal(file('b/b_3.db3', 'open', 29_000), folderOf(), clock)).toBeUndefined();
    expect(closingSignal(file('b/b_3.db3', 'open', 30_000), folderOf(), clock)).toBe('settled');
  });

  it('file compression: a plain split with its .zstd is transient; a .zstd waits while its plain split exists', () => {
    const plain = file('b/b_0.mcap');
    const zstd = file('b/b_0.mcap.zstd');
    expect(isTransientPlain(plain, folderOf(plain, zstd))).toBe(true);
    expect(isTransientPlain(plain, folderOf(plain))).toBe(false);
    expect(closingBlocker(zstd, folderOf(plain, zstd), clock, false)).toMatch(/being compressed/);
    expect(closingBlocker(zstd, folderOf(zstd), clock, false)).toBeUndefined();
    // Once a bag shows compression, later plain splits wait for their own .zstd.
    const plain1 = file('b/b_1.mcap');
    expect(closingBlocker(plain1, folderOf(zstd, plain1), clock, false)).toMatch(/waiting for b_1.mcap.zstd/);
    // ... unless nothing changed for the settle time (a crashed compressor must not block forever).
    expect(closingBlocker(file('b/b_1.mcap', 'closing', 30_000), folderOf(zstd), clock, false)).toBeUndefined();
    expect(closingBlocker(file('b/b_1.db3'), folderOf(), clock, true)).toMatch(/-wal/);
  });
});

describe('release order', () => {
  it('releases splits strictly in index order and metadata.yaml only after every other file was verified', () => {
    const s0 = file('b/b_0.mcap', 'ready');
    const s1 = file('b/b_1.mcap', 'closing');
    const s2 = file('b/b_2.mcap', 'ready');
    const meta = file('b/metadata.yaml', 'ready');
    const folder = folderOf(meta, s2, s1, s0);
    expect(folder.releasable()).toEqual([s0]);
    folder.setPhase(s0, 'released');
    folder.setPhase(s1, 'ready');
    expect(folder.releasable()).toEqual([s1, s2]);
    folder.setPhase(s1, 'uploaded');
    folder.setPhase(s2, 'released');
    expect(folder.releasable()).toEqual([]);
    folder.setPhase(s0, 'uploaded');
    folder.setPhase(s2, 'uploaded');
    expect(folder.releasable()).toEqual([meta]);
  });

  it('orders _9 before _10 and skips transient plain splits', () => {
    const s9 = file('b/b_9.mcap', 'ready');
    const s10 = file('b/b_10.mcap', 'ready');
    expect(folderOf(s10, s9).releasable()).toEqual([s9, s10]);
    const plain = file('b/b_0.mcap', 'transient');
    const zstd = file('b/b_0.mcap.zstd', 'ready');
    const meta = file('b/metadata.yaml', 'ready');
    const folder = folderOf(plain, zstd, meta);
    expect(folder.releasable()).toEqual([zstd]);
    folder.setPhase(zstd, 'uploaded');
    expect(folder.releasable()).toEqual([meta]);
  });

  it('keeps the order when a split goes back (changed during its upload) or an earlier split appears late', () => {
    const splits = [0, 1, 2, 3].map((n) => file(`b/b_${n}.mcap`, 'ready'));
    const folder = folderOf(...splits);
    expect(folder.releasable()).toEqual(splits);
    for (const split of splits) folder.setPhase(split, 'released');
    expect(folder.releasable()).toEqual([]);
    // Split 1 changed during its upload: it is confirmed again, and goes before nothing else is held back.
    folder.setPhase(splits[1]!, 'closing');
    expect(folder.releasable()).toEqual([]);
    folder.setPhase(splits[1]!, 'ready');
    expect(folder.releasable()).toEqual([splits[1]]);
    // A split found late (a rescan) below the released ones holds back the ones after it that are ready.
    const late = file('b/b_4.mcap', 'closing');
    const after = file('b/b_5.mcap', 'ready');
    folder.add(after);
    folder.add(late);
    expect(folder.releasable()).toEqual([splits[1]]);
    folder.setPhase(late, 'ready');
    expect(folder.releasable()).toEqual([splits[1], late, after]);
  });

  it('metadata.yaml waits for every other file, and goes once the last one is verified or gone', () => {
    const split = file('b/b_0.db3', 'released');
    const notes = file('b/notes.json', 'ready');
    const meta = file('b/metadata.yaml', 'ready');
    const folder = folderOf(split, notes, meta);
    expect(folder.unverified).toBe(2);
    expect(folder.releasable()).toEqual([notes]);
    folder.setPhase(notes, 'uploaded');
    expect(folder.releasable()).toEqual([]);
    folder.remove(split);
    expect(folder.releasable()).toEqual([meta]);
  });
});
