import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderSyncer } from '../../server/storage/durable-fs.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await createTempDir('folder-syncer');
});
afterAll(async () => {
  await dir?.remove();
});

describe('FolderSyncer (folder fsyncs shared by completions in one folder)', () => {
  it('lets callers that arrive during an fsync share the next one, never the one already running', async () => {
    const syncer = new FolderSyncer();
    const first = syncer.sync(dir.path);
    const second = syncer.sync(dir.path);
    const third = syncer.sync(dir.path);
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    // Once idle, a new caller starts its own fsync; other folders are independent.
    const other = path.join(dir.path, 'other');
    await mkdir(other);
    const later = syncer.sync(dir.path);
    expect(later).not.toBe(second);
    expect(syncer.sync(other)).not.toBe(later);
    await Promise.all([later, syncer.sync(other)]);
  });

  it('rejects for a folder that cannot be opened, and recovers for the next caller', async () => {
    const syncer = new FolderSyncer();
    const missing = path.join(dir.path, 'missing');
    await expect(syncer.sync(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await mkdir(missing);
    await expect(syncer.sync(missing)).resolves.toBeUndefined();
  });
});
