import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { UploadError } from '../../../common/errors/upload-error.js';

/**
 * Reads the bearer token from `tokenFile`, the way ssh treats a private key: the file must be a
 * regular file that neither its group nor others can read or write (mode 0600 or 0400), or it is
 * refused with a message naming the file and the chmod that fixes it. The token is the first
 * line, trimmed. A token on the command line is visible to every local user in
 * /proc/<pid>/cmdline; one in a file (or in the environment, readable only by the same user) is
 * not.
 */
export function readTokenFile(tokenFile: string): string {
  const cannotRead = (error: unknown): UploadError =>
    new UploadError(
      'TOKEN_FILE',
      `Cannot read the token file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  // One descriptor for the check and the read: a file swapped in between is never read.
  let fd: number;
  try {
    fd = openSync(tokenFile, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw cannotRead(error);
  }
  let text: string;
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new UploadError('TOKEN_FILE', `The token file ${tokenFile} is not a regular file`);
    const mode = info.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new UploadError(
        'TOKEN_FILE',
        `The token file ${tokenFile} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}): ` +
          `anyone on this machine could read the token; run: chmod 600 ${tokenFile}`,
      );
    }
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof UploadError) throw error;
    throw cannotRead(error);
  } finally {
    closeSync(fd);
  }
  const token = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  if (token === '')
    throw new UploadError('TOKEN_FILE', `The token file ${tokenFile} is empty (the token is its first line)`);
  if (/\s/.test(token))
    throw new UploadError('TOKEN_FILE', `The token in ${tokenFile} contains spaces; the token is the first line alone`);
  return token;
}
