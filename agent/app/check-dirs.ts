import { accessSync, constants, realpathSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { makeDirectorySync } from '../../common/fs/make-directory.js';

/** The state directory must exist (it is created) and be readable and writable. */
export function checkStateDir(stateDir: string): void {
  try {
    makeDirectorySync(stateDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR')
      throw new UploadError('STATE_DIR', `The state directory ${stateDir} is not a directory`, { cause: error });
    throw new UploadError(
      'STATE_DIR',
      `Cannot create the state directory ${stateDir}: ${code ?? (error as Error).message}`,
      { cause: error },
    );
  }
  try {
    if (!statSync(stateDir).isDirectory()) throw new Error('not a directory');
    accessSync(stateDir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new UploadError('STATE_DIR', `The state directory ${stateDir} is not a readable and writable directory`, {
      cause: error,
    });
  }
}

/** The watch folder must exist (or is created with createWatchDir) and be a readable directory. */
export function checkWatchDir(watchDir: string, create: boolean): string {
  const dir = path.resolve(watchDir);
  if (create) {
    try {
      makeDirectorySync(dir);
    } catch (error) {
      throw new UploadError(
        'FILE_UNREADABLE',
        `Cannot create the watch folder ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        { cause: error },
      );
    }
  }
  let info: Stats;
  try {
    info = statSync(dir);
  } catch (error) {
    throw new UploadError(
      'LOCAL_FILE_NOT_FOUND',
      `The watch folder ${dir} does not exist (create it, or pass --create-watch-dir)`,
      { cause: error },
    );
  }
  if (!info.isDirectory()) throw new UploadError('FILE_UNREADABLE', `The watch folder ${dir} is not a directory`);
  try {
    accessSync(dir, constants.R_OK | constants.X_OK);
  } catch (error) {
    throw new UploadError('FILE_UNREADABLE', `The watch folder ${dir} is not readable`, { cause: error });
  }
  return realpathSync(dir);
}
