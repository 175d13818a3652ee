import { describe, expect, it } from 'vitest';
import { classifyFile } from '../../agent/watcher/bag-files.js';
import { closingBlocker, closingSignal, isTransientPlain, releasable } from '../../agent/watcher/closing-rules.js';
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
    settledSince: NOW - stableFor,
    marked: false,
    signal: undefined,
    phase,
    reason: '',
    replace: false,
    magic: undefined,
    firstSeen: 0,
  };
}

describe('closing signals', () => {
  it('a later split means closing, compared numerically (_10 after _9)', () => {
    const nine = file('b/b_9.mcap');
    const ten = file('b/b_10.mcap');
    const folder = [ten, nine];
    expect(closingSignal(nine, folder, clock)).toBe('later-split');
    expect(closingSignal(ten, folder, clock)).toBeUndefined();
    // A later split in compressed form counts too.
    expect(closingSignal(nine, [nine, file('b/b_10.mcap.zstd')], clock)).toBe('later-split');
  });

  it('metadata.yaml means the last split is closing; a marked file is closing; settling is the fallback', () => {
    const last = file('b/b_3.db3');
    expect(closingSignal(last, [last, file('b/metadata.yaml')], clock)).toBe('metadata');
    expect(closingSignal(file('b/metadata.yaml'), [], clock)).toBe('metadata');
    const marked = file('b/b_3.db3');
    marked.marked = true;
    expect(closingSignal(marked, [marked], clock)).toBe('marked');
    expect(closingSignal(file('b/b_3.db3', 'open', 29_000), [], clock)).toBeUndefined();
    expect(closingSignal(file('b/b_3.db3', 'open', 30_000), [], clock)).toBe('settled');
  });

  it('file compression: a plain split with its .zstd is transient; a .zstd waits while its plain split exists', () => {
    const plain = file('b/b_0.mcap');
    const zstd = file('b/b_0.mcap.zstd');
    expect(isTransientPlain(plain, [plain, zstd])).toBe(true);
    expect(isTransientPlain(plain, [plain])).toBe(false);
    expect(closingBlocker(zstd, [plain, zstd], clock, false)).toMatch(/being compressed/);
    expect(closingBlocker(zstd, [zstd], clock, false)).toBeUndefined();
    // Once a bag shows compression, later plain splits wait for their own .zstd.
    const plain1 = file('b/b_1.mcap');
    expect(closingBlocker(plain1, [zstd, plain1], clock, false)).toMatch(/waiting for b_1.mcap.zstd/);
    // ... unless nothing changed for the settle time (a crashed compressor must not block forever).
    expect(closingBlocker(file('b/b_1.mcap', 'closing', 30_000), [zstd], clock, false)).toBeUndefined();
    expect(closingBlocker(file('b/b_1.db3'), [], clock, true)).toMatch(/-wal/);
  });
});

describe('release order', () => {
  it('releases splits strictly in index order and metadata.yaml only after every other file was verified', () => {
    const s0 = file('b/b_0.mcap', 'ready');
    const s1 = file('b/b_1.mcap', 'closing');
    const s2 = file('b/b_2.mcap', 'ready');
    const meta = file('b/metadata.yaml', 'ready');
    expect(releasable([meta, s2, s1, s0])).toEqual([s0]);
    s0.phase = 'released';
    s1.phase = 'ready';
    expect(releasable([meta, s2, s1, s0])).toEqual([s1, s2]);
    s1.phase = 'uploaded';
    s2.phase = 'released';
    expect(releasable([meta, s2, s1, s0])).toEqual([]);
    s0.phase = 'uploaded';
    s2.phase = 'uploaded';
    expect(releasable([meta, s2, s1, s0])).toEqual([meta]);
  });

  it('orders _9 before _10 and skips transient plain splits', () => {
    const s9 = file('b/b_9.mcap', 'ready');
    const s10 = file('b/b_10.mcap', 'ready');
    expect(releasable([s10, s9])).toEqual([s9, s10]);
    const plain = file('b/b_0.mcap', 'transient');
    const zstd = file('b/b_0.mcap.zstd', 'ready');
    const meta = file('b/metadata.yaml', 'ready');
    expect(releasable([plain, zstd, meta])).toEqual([zstd]);
    zstd.phase = 'uploaded';
    expect(releasable([plain, zstd, meta])).toEqual([meta]);
  });
});
