import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { UploadError } from '../../common/errors/upload-error.js';

/** S_ISVTX, the sticky bit (not in Node's constants). */
const STICKY = 0o1000;

/**
 * The storage is only as safe as the folders that hold it: anyone who may write in the storage
 * root, in one of its top folders, or in a folder above the root can rename folders and plant
 * symlinks there, and so redirect or replace stored files. So, as ssh's StrictModes does for
 * ~/.ssh, the server refuses to start on a folder that someone other than its own user (or
 * root) owns or may write to, and says which folder and how to fix it. A folder above the root
 * may be writable by all when it has the sticky bit (/tmp): others cannot rename or delete
 * entries they do not own there.
 */
export async function checkStorageFolders(root: string, topFolders: readonly string[]): Promise<void> {
  const uid = process.geteuid?.();
  if (uid === undefined) return; // no POSIX owners (Windows)
  for (let above = path.dirname(root); ; above = path.dirname(above)) {
    await checkFolder(above, uid, { stickyAllowed: true, what: 'a folder above the storage root' });
    if (path.dirname(above) === above) break;
  }
  await checkFolder(root, uid, { stickyAllowed: false, what: 'the storage root' });
  for (const folder of topFolders)
    await checkFolder(folder, uid, { stickyAllowed: false, what: 'a folder of the storage' });
}

/** Refuses a file (the session database) that is a symlink, or that others own or may write. */
export async function checkStorageFile(file: string): Promise<void> {
  const uid = process.geteuid?.();
  const info = await lstat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!info || uid === undefined) return;
  if (info.isSymbolicLink() || !info.isFile())
    throw refusal(`${file} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}`, `rm ${file}`);
  if (info.uid !== uid && info.uid !== 0)
    throw refusal(`${file} is owned by uid ${info.uid}, not by the server's user (uid ${uid})`, `chown ${uid} ${file}`);
  if ((info.mode & 0o022) !== 0)
    throw refusal(`${file} may be written by ${writers(info.mode)} (mode ${octal(info.mode)})`, `chmod go-w ${file}`);
}

async function checkFolder(
  folder: string,
  uid: number,
  options: { stickyAllowed: boolean; what: string },
): Promise<void> {
  const info = await lstat(folder);
  if (info.isSymbolicLink())
    throw refusal(
      `${folder} (${options.what}) is a symbolic link; the server never follows one inside its storage`,
      `replace the link by the folder it points to`,
    );
  if (!info.isDirectory()) throw refusal(`${folder} (${options.what}) is not a folder`, `remove it`);
  if (info.uid !== uid && info.uid !== 0)
    throw refusal(
      `${folder} (${options.what}) is owned by uid ${info.uid}, not by the server's user (uid ${uid}) or root`,
      `chown ${uid} ${folder}`,
    );
  if ((info.mode & 0o022) === 0) return;
  if (options.stickyAllowed && (info.mode & STICKY) !== 0) return;
  throw refusal(
    `${folder} (${options.what}) may be written by ${writers(info.mode)} (mode ${octal(info.mode)}): ` +
      `they could plant symlinks or replace stored files`,
    `chmod go-w ${folder}`,
  );
}

function writers(mode: number): string {
  const group = (mode & 0o020) !== 0;
  const others = (mode & 0o002) !== 0;
  return group && others ? 'its group and all users' : group ? 'its group' : 'all users';
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

function refusal(problem: string, fix: string): UploadError {
  return new UploadError('STATE_DIR', `Refusing an unsafe storage folder: ${problem}. Fix: ${fix}`);
}
