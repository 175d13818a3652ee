import { statSync } from 'node:fs';
import { UploadError } from '../../common/errors/upload-error.js';

export interface FileModeOptions {
  /** Refuse (AUTH_CONFIG, exit 78) instead of warning. */
  strictPermissions?: boolean;
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * Checks, as ssh does for its keys, that a file the server trusts for authentication gives its
 * group and others none of the access in `mask`: the tokens file neither read nor write (whoever
 * reads it can upload as every robot, whoever writes it can add a token of their own), the
 * client-certificate map no write. A loose file is a warning, or, with `strictPermissions`, a
 * start-up error. A file that cannot be stat'ed is left to the reader, which names the problem.
 */
export function checkFileMode(file: string, what: string, mask: 0o066 | 0o022, options: FileModeOptions): void {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return;
  }
  if ((mode & mask) === 0) return;
  const access = (read: number, write: number, whom: string): string[] => {
    const what = [mode & mask & read ? 'read' : '', mode & mask & write ? 'written' : ''].filter(Boolean).join(' and ');
    return what ? [`${what} by ${whom}`] : [];
  };
  const who = [...access(0o040, 0o020, 'its group'), ...access(0o004, 0o002, 'others')].join(', and ');
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  const fix = mask === 0o066 ? `chmod 600 ${file}` : `chmod go-w ${file}`;
  const message = `The ${what} ${file} can be ${who} (mode ${octal}): ${fix}, owned by the server's user`;
  if (options.strictPermissions) {
    throw new UploadError('AUTH_CONFIG', `${message}; strictPermissions refuses to start with it`);
  }
  options.warn?.(`${message} (strictPermissions would refuse to start)`, {
    event: 'loose_file_permissions',
    file,
    mode: octal,
  });
}
