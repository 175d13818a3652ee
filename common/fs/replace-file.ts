import { closeSync, constants, fstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

/** Created new (a link or file planted at the temporary name is removed first, never followed). */
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Read without following a link, and without blocking on a FIFO planted at the name. */
const READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * The text of a file replaceFileSync wrote: a symbolic link or anything but a regular file at its
 * name throws instead of being read through, so a planted link cannot make the caller parse
 * another file as its state.
 */
export function readReplacedFileSync(file: string): string {
  const fd = openSync(file, READ);
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${file} is not a regular file`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `file` with `text` atomically (a temporary file next to it, renamed over it), mode
 * 0600. Readers see the old or the new content, never half; neither the temporary file nor
 * `file` is written through a symbolic link.
 */
export function replaceFileSync(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, CREATE, 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}

/** The asynchronous replaceFileSync. */
export async function replaceFile(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await rm(temporary, { force: true });
  const handle = await open(temporary, CREATE, 0o600);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}
