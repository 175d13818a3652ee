import { readFileSync, statSync } from 'node:fs';
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
  let mode: number;
  try {
    const info = statSync(tokenFile);
    if (!info.isFile()) throw new UploadError('TOKEN_FILE', `The token file ${tokenFile} is not a regular file`);
    mode = info.mode & 0o777;
  } catch (error) {
    if (error instanceof UploadError) throw error;
    throw new UploadError(
      'TOKEN_FILE',
      `Cannot read the token file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new UploadError(
      'TOKEN_FILE',
      `The token file ${tokenFile} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}): ` +
        `anyone on this machine could read the token; run: chmod 600 ${tokenFile}`,
    );
  }
  let text: string;
  try {
    text = readFileSync(tokenFile, 'utf8');
  } catch (error) {
    throw new UploadError(
      'TOKEN_FILE',
      `Cannot read the token file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
  const token = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  if (token === '')
    throw new UploadError('TOKEN_FILE', `The token file ${tokenFile} is empty (the token is its first line)`);
  if (/\s/.test(token))
    throw new UploadError('TOKEN_FILE', `The token in ${tokenFile} contains spaces; the token is the first line alone`);
  return token;
}
