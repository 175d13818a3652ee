import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderSyncer } from '../../server/storage/durable-fs.js';
import { FolderHandle } from '../../server/storage/folder-handle.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await createTempDir('folder-syncer');
});
afterAll(async () => {
  await dir?.remove();
});

/** An fsync of `folder` through a descriptor, counted. */
function counted(folder: string, counter: { n: number }): () => Promise<void> {
  return async () => {
    counter.n += 1;
    const handle = await FolderHandle.open(folder);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
}

describe('FolderSyncer (folder fsyncs shared by completions in one folder)', () => {
  it('lets callers that arrive during an fsync share the next one, never the one already running', async () => {
    const syncer = new FolderSyncer();
    const runs = { n: 0 };
    const first = syncer.sync(dir.path, counted(dir.path, runs));
    const second = syncer.sync(dir.path, counted(dir.path, runs));
    const third = syncer.sync(dir.path, counted(dir.path, runs));
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    expect(runs.n).toBe(2);
    // Once idle, a new caller starts its own fsync; other folders are independent.
    const other = path.join(dir.path, 'other');
    await mkdir(other);
    const later = syncer.sync(dir.path, counted(dir.path, runs));
    expect(later).not.toBe(second);
    const elsewhere = syncer.sync(other, counted(other, runs));
    expect(elsewhere).not.toBe(later);
    await Promise.all([later, elsewhere]);
  });

  it('rejects for a folder that cannot be opened, and recovers for the next caller', async () => {
    const syncer = new FolderSyncer();
    const missing = path.join(dir.path, 'missing');
    const runs = { n: 0 };
    await expect(syncer.sync(missing, counted(missing, runs))).rejects.toMatchObject({ code: 'ENOENT' });
    await mkdir(missing);
    await expect(syncer.sync(missing, counted(missing, runs))).resolves.toBeUndefined();
  });
});
