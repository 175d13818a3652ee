import { mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { call, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyPost, legacyUploadFile } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let parent: TempDir;
let server: TestServer;
let files: TempDir;
const fingerprint = `fp1:${'0'.repeat(64)}`;

/** Every file under a folder, relative, recursively. */
async function listTree(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)))
    .sort();
}

beforeAll(async () => {
  // The storage root sits inside a parent folder, so anything written outside it would show up there.
  parent = await createTempDir('path-safety');
  server = await startTestServer({ uploadDir: path.join(parent.path, 'storage') });
  files = await createTempDir('path-files');
});
afterAll(async () => {
  await server?.close();
  await parent?.remove();
  await files?.remove();
});

describe('paths', () => {
  const bad: [string, RegExp][] = [
    ['../../x', /must not contain "\.\."/],
    ['a/../../x', /must not contain "\.\."/],
    ['/etc/passwd', /must be relative/],
    ['C:/x.bag', /drive/],
    ['a\\..\\x', /backslash/],
    ['a\u0000b', /NUL/],
    ['./x', /"\." segments/],
    ['a\u0007b', /control, invisible format or separator characters: U\+0007 ALERT at byte 1/],
    ['', /must not be empty/],
    ['x'.repeat(300), /segment longer than 255/],
  ];

  it('refuses traversal, absolute and odd paths with a clear 400 on both APIs', async () => {
    for (const [name, message] of bad) {
      const legacy = await legacyPost(server.url, '/upload/init', { filename: name, filesize: 10, chunks: 1 });
      expect(legacy.status, JSON.stringify(name)).toBe(400);
      expect(legacy.json).toMatchObject({ success: false, code: 'INVALID_PATH' });
      expect(legacy.json.error).toMatch(message);
      const native = await call(server.url, 'POST', routes.sessions, { path: name, size: 10, fingerprint });
      expect(native.status, JSON.stringify(name)).toBe(400);
      expect(native.json.code).toBe('INVALID_PATH');
    }
    const lookup = await fetch(`${server.url}/v1/files/..%2F..%2Fetc%2Fpasswd`);
    expect(lookup.status).toBe(400);
  });

  it('refuses a path through a symlink in the storage (never followed), and writes nothing outside', async () => {
    const outside = path.join(parent.path, 'outside');
    await mkdir(outside);
    await mkdir(path.join(server.uploadDir, 'completed', 'anonymous'), { recursive: true });
    await symlink(outside, path.join(server.uploadDir, 'completed', 'anonymous', 'escape'));
    const file = path.join(files.path, 'f.bin');
    await writeRandomFile(file, 5000);
    const native = await uploadFile(server.url, file, 'escape/f.bin');
    expect(native.create.status).toBe(400);
    expect(native.create.json).toMatchObject({
      code: 'INVALID_PATH',
      error:
        'escape is a symbolic link on the server; the server never follows one, so escape/f.bin cannot be stored there',
    });
    const legacy = await legacyUploadFile(server.url, file, 'escape/f.bin', { chunks: 1 });
    expect(legacy.init.status).toBe(400);
    expect(legacy.init.json.code).toBe('INVALID_PATH');
    expect(await readdir(outside)).toEqual([]);
  });

  it('normalises Unicode and keeps folder structure; nothing appears outside the root', async () => {
    const file = path.join(files.path, 'u.bin');
    const sha = await writeRandomFile(file, 5000);
    const decomposed = 'bag_cafe\u0301/run_0.mcap';
    const result = await uploadFile(server.url, file, decomposed);
    expect(result.complete.json).toMatchObject({ state: 'complete', path: 'bag_caf\u00e9/run_0.mcap' });
    expect(await sha256OfFile(server.completedPath('anonymous', 'bag_caf\u00e9/run_0.mcap'))).toBe(sha);
    const outsideFiles = (await listTree(parent.path)).filter((f) => !f.startsWith(`storage${path.sep}`));
    expect(outsideFiles).toEqual([]);
  });
});
