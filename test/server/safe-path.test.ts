import { mkdir, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRoot, SafePathResolver } from '../../server/storage/safe-path.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir;
let root: string;
let outside: string;
let resolver: SafePathResolver;

beforeAll(async () => {
  dir = await createTempDir('safe-path');
  root = await realRoot(path.join(dir.path, 'completed'));
  outside = await realRoot(path.join(dir.path, 'outside'));
  resolver = new SafePathResolver(root);
});
afterAll(async () => {
  await dir?.remove();
});

describe('SafePathResolver (the storage side of path safety)', () => {
  it('resolves nested paths, creates missing folders only when asked, reports an existing file and size', async () => {
    expect(await resolver.resolve(['robot', 'bag', 'a.mcap'], { createParents: false })).toEqual({
      absolute: path.join(root, 'robot', 'bag', 'a.mcap'),
      exists: false,
      size: undefined,
      created: [],
    });
    await expect(stat(path.join(root, 'robot'))).rejects.toThrow(/ENOENT/);
    const created = await resolver.resolve(['robot', 'bag', 'a.mcap'], { createParents: true });
    // The folders it made are listed top-down, so their parents can be synced.
    expect(created).toEqual({
      absolute: path.join(root, 'robot', 'bag', 'a.mcap'),
      exists: false,
      size: undefined,
      created: [path.join(root, 'robot'), path.join(root, 'robot', 'bag')],
    });
    expect((await stat(path.join(root, 'robot', 'bag'))).isDirectory()).toBe(true);
    await writeFile(created.absolute, 'x'.repeat(123));
    expect(await resolver.resolve(['robot', 'bag', 'a.mcap'], { createParents: true })).toMatchObject({
      exists: true,
      size: 123,
      created: [],
    });
  });

  it('follows a symlinked folder that stays inside the root', async () => {
    await mkdir(path.join(root, 'robot', 'real-bag'), { recursive: true });
    await symlink(path.join(root, 'robot', 'real-bag'), path.join(root, 'robot', 'linked-bag'));
    const resolved = await resolver.resolve(['robot', 'linked-bag', 'b.mcap'], { createParents: true });
    expect(resolved.absolute).toBe(path.join(root, 'robot', 'real-bag', 'b.mcap'));
  });

  it('refuses a path through a symlink leaving the root, at any depth, with or without creating folders', async () => {
    await symlink(outside, path.join(root, 'robot', 'escape'));
    for (const createParents of [false, true]) {
      await expect(resolver.resolve(['robot', 'escape', 'x.bin'], { createParents })).rejects.toMatchObject({
        code: 'INVALID_PATH',
        message: expect.stringMatching(/would leave the storage root/),
      });
      await expect(resolver.resolve(['robot', 'escape', 'deeper', 'x.bin'], { createParents })).rejects.toMatchObject({
        code: 'INVALID_PATH',
      });
    }
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a link planted after the same folder was resolved safely (nothing is cached)', async () => {
    await resolver.resolve(['robot', 'swapped', 'c.bin'], { createParents: true });
    expect((await resolver.resolve(['robot', 'swapped', 'c.bin'], { createParents: false })).exists).toBe(false);
    // Someone with access to the storage replaces the folder by a link to the outside.
    await rename(path.join(root, 'robot', 'swapped'), path.join(root, 'robot', 'swapped-away'));
    await symlink(outside, path.join(root, 'robot', 'swapped'));
    await expect(resolver.resolve(['robot', 'swapped', 'c.bin'], { createParents: true })).rejects.toMatchObject({
      code: 'INVALID_PATH',
    });
    await rm(path.join(root, 'robot', 'swapped'));
  });

  it('refuses a symlink or folder as the final component; names a file standing where a folder should be', async () => {
    await writeFile(path.join(outside, 'secret'), 'secret');
    await symlink(path.join(outside, 'secret'), path.join(root, 'robot', 'link.bin'));
    await expect(resolver.resolve(['robot', 'link.bin'], { createParents: false })).rejects.toMatchObject({
      code: 'INVALID_PATH',
      message: expect.stringMatching(/symbolic link/),
    });
    await mkdir(path.join(root, 'robot', 'folder.bin'));
    await expect(resolver.resolve(['robot', 'folder.bin'], { createParents: false })).rejects.toMatchObject({
      code: 'FILE_EXISTS',
      message: expect.stringMatching(/is a folder/),
    });
    await writeFile(path.join(root, 'robot', 'plain'), 'a file');
    for (const createParents of [false, true]) {
      await expect(resolver.resolve(['robot', 'plain', 'x.bin'], { createParents })).rejects.toMatchObject({
        code: 'FILE_EXISTS',
        message: 'robot/plain is a file on the server, so robot/plain/x.bin cannot be stored',
      });
      await expect(resolver.resolve(['robot', 'plain', 'deep', 'x.bin'], { createParents })).rejects.toMatchObject({
        code: 'FILE_EXISTS',
        message: expect.stringMatching(/^robot\/plain is a file/),
      });
    }
  });
});
