import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runServerProgram } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/** The storage and database options refuse what cannot work, at start, with the exit codes of docs/server.md. */
let dir: TempDir | undefined;
afterEach(async () => {
  await dir?.remove();
  dir = undefined;
});

describe('storage and database options', () => {
  it('--storage s3 needs a bucket; PostgreSQL needs --storage s3 (exit 64, naming the option)', async () => {
    const noBucket = await runServerProgram(['--port', '0', '--storage', 's3']);
    expect(noBucket.code).toBe(64);
    expect(noBucket.stderr).toContain('--s3-bucket');
    const localWithDatabase = await runServerProgram([
      '--port',
      '0',
      '--database-url',
      'postgres://u:secret@127.0.0.1:1/db',
    ]);
    expect(localWithDatabase.code).toBe(64);
    expect(localWithDatabase.stderr).toMatch(/databaseUrl.*--storage s3/);
    expect(localWithDatabase.stderr).not.toContain('secret');
    const badStorage = await runServerProgram(['--port', '0', '--storage', 'nfs']);
    expect(badStorage.code).toBe(64);
    expect(badStorage.stderr).toMatch(/storage.*local, s3/);
  });

  it('an unreadable credentials file is exit 78; an unreachable bucket is exit 73, naming it', async () => {
    dir = await createTempDir('storage-options');
    const missing = await runServerProgram([
      '--port',
      '0',
      '--storage',
      's3',
      '--s3-bucket',
      'fleet',
      '--s3-credentials-file',
      path.join(dir.path, 'nope.yaml'),
    ]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('nope.yaml');
    const keys = path.join(dir.path, 'keys.yaml');
    await writeFile(keys, 'accessKeyId: AKIAEXAMPLE\nsecretAccessKey: do-not-print-this\n');
    const unreachable = await runServerProgram(
      [
        '--port',
        '0',
        '--storage',
        's3',
        '--s3-bucket',
        'fleet',
        '--s3-endpoint',
        'http://127.0.0.1:9',
        '--s3-credentials-file',
        keys,
      ],
      {},
      60_000,
    );
    expect(unreachable.code).toBe(73);
    expect(unreachable.stderr).toContain('bucket fleet');
    expect(unreachable.stderr).not.toContain('do-not-print-this');
  });
});
