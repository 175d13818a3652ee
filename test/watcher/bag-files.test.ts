import { describe, expect, it } from 'vitest';
import { classifyFile, createFileFilter, isNeverUploaded } from '../../agent/watcher/bag-files.js';

describe('bag file names', () => {
  it('parses rosbag2 split names with numeric indexes, storage and file compression', () => {
    expect(classifyFile('run1/run1_10.mcap')).toMatchObject({
      role: 'split',
      dir: 'run1',
      stem: 'run1',
      index: 10,
      storage: 'mcap',
      compressed: false,
    });
    expect(classifyFile('a/b/run_2_3.db3.zstd')).toMatchObject({
      role: 'split',
      dir: 'a/b',
      stem: 'run_2',
      index: 3,
      storage: 'db3',
      compressed: true,
    });
    expect(classifyFile('run1/metadata.yaml')).toMatchObject({ role: 'metadata', dir: 'run1' });
    expect(classifyFile('single.mcap')).toMatchObject({ role: 'other', dir: '', storage: 'mcap', index: undefined });
    expect(classifyFile('run1/notes.txt')).toMatchObject({ role: 'other', storage: undefined });
  });

  it('never uploads recorder temporaries, SQLite side files or hidden paths', () => {
    for (const name of [
      'r/r_0.mcap.active',
      'r/r_0.db3-wal',
      'r/r_0.db3-shm',
      'r/r_0.db3-journal',
      'r/.r_0.mcap.swp',
      '.uploaded/r/r_0.mcap',
    ]) {
      expect(isNeverUploaded(name), name).toBe(true);
    }
    expect(isNeverUploaded('r/r_0.mcap')).toBe(false);
  });

  it('takes bag files by default, extra files by include globs, and lets exclude win', () => {
    const filter = createFileFilter({ include: ['*.json', 'logs/**'], exclude: ['scratch', '**/camera_*.mcap'] });
    expect(filter.wantsFile('run1/run1_0.mcap')).toBe(true);
    expect(filter.wantsFile('run1/metadata.yaml')).toBe(true);
    expect(filter.wantsFile('run1/run1_0.db3.zstd')).toBe(true);
    expect(filter.wantsFile('run1/notes.txt')).toBe(false);
    expect(filter.wantsFile('run1/info.json')).toBe(true);
    expect(filter.wantsFile('logs/a/b.txt')).toBe(true);
    expect(filter.wantsFile('scratch/run1/run1_0.mcap')).toBe(false);
    expect(filter.wantsFile('x/scratch/info.json')).toBe(false);
    expect(filter.wantsFile('run1/camera_0.mcap')).toBe(false);
    expect(filter.wantsFile('run1/run1_0.mcap-wal')).toBe(false);
    expect(filter.skipsDir('scratch')).toBe(true);
    expect(filter.skipsDir('a/scratch/b')).toBe(true);
    expect(filter.skipsDir('.uploaded')).toBe(true);
    expect(filter.skipsDir('run1')).toBe(false);
  });
});
