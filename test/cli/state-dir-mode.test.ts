import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkStateDir } from '../../agent/app/check-dirs.js';

/** The state directory holds the record of verified files: only its owner may write it. */
describe('the state directory', () => {
  const made: string[] = [];
  afterEach(async () => {
    for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  const scratch = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'state-dir-mode-'));
    made.push(dir);
    return dir;
  };

  it('is created for its owner only, with every missing parent', async () => {
    const stateDir = path.join(await scratch(), 'a', 'state');
    const previous = process.umask(0o000);
    try {
      expect(checkStateDir(stateDir)).toBeUndefined();
    } finally {
      process.umask(previous);
    }
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
  });

  it('others may write: a warning that names the folder and the fix', async () => {
    const stateDir = await scratch();
    await chmod(stateDir, 0o777);
    const warning = checkStateDir(stateDir);
    expect(warning).toContain(stateDir);
    expect(warning).toContain(`chmod go-w ${stateDir}`);
    await chmod(stateDir, 0o755);
    expect(checkStateDir(stateDir)).toBeUndefined();
  });
});
