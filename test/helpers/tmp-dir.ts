import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface TempDir {
  readonly path: string;
  /** Deletes the folder and everything in it (safe to call twice). */
  remove(): Promise<void>;
}

/**
 * A fresh folder under os.tmpdir() (`<prefix>-XXXXXX`). Call `remove()` in afterEach/afterAll;
 * it retries a little because a server child process may still be closing files.
 */
export async function createTempDir(prefix = 'ros2-upload-test'): Promise<TempDir> {
  const folder = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  return {
    path: folder,
    remove: () => rm(folder, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }),
  };
}
