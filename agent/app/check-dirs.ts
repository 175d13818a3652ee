import { accessSync, constants, lstatSync, realpathSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';
import { makeDirectorySync } from '../../common/fs/make-directory.js';

/**
 * The state directory must exist (it is created, for its owner only) and be readable and writable.
 * Returns a warning when others may write it: whoever can write the ledger of verified files can
 * make the disk guard or an after-upload action delete a file that was never uploaded.
 */
export function checkStateDir(stateDir: string): string | undefined {
  try {
    makeDirectorySync(stateDir, 0o700);
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
  // The operator names the state directory: a link to it is followed once, here, as for the
  // watch root; the mode checked is the real folder's.
  const mode = lstatSync(realpathSync(stateDir)).mode & 0o777;
  if ((mode & 0o022) === 0) return undefined;
  return (
    `the state directory ${stateDir} can be written by others (mode ${mode.toString(8)}): they could forge ` +
    `the record of verified files; run chmod go-w ${stateDir}`
  );
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
