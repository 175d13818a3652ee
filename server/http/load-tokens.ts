import { readFileSync } from 'node:fs';
import { parseYaml } from '../../common/text/yaml.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { checkFileMode, type FileModeOptions } from './file-mode.js';
import { ANONYMOUS, TokenTable, UPLOADER_NAME, type TokenEntry } from './token-table.js';
import { tokenWeakness } from './token-strength.js';

/**
 * The tokens from the tokens file and the `tokens` option (`uploader=token` pairs). The file is
 * YAML or JSON: a mapping `uploader: token` (or `uploader: [token, …]` to rotate tokens), or a
 * list of `{uploader, token}`, optionally under a top-level `tokens:` key. Every entry is
 * checked: a valid uploader name other than the reserved `anonymous`, a strong token
 * (token-strength.ts), no token for two uploaders. Errors (AUTH_CONFIG, exit 78) name the file,
 * the entry and the uploader, never a token.
 */
export function loadTokens(
  tokensFile: string | undefined,
  pairs: readonly string[],
  options: FileModeOptions = {},
): TokenTable {
  const entries: TokenEntry[] = [];
  if (tokensFile) {
    checkFileMode(tokensFile, 'tokens file', 0o066, options);
    entries.push(...readTokensFile(tokensFile));
  }
  pairs.forEach((pair, position) => {
    const equals = pair.indexOf('=');
    if (equals <= 0 || equals === pair.length - 1) {
      throw new UploadError('AUTH_CONFIG', `Invalid tokens entry #${position + 1}: expected uploader=token`);
    }
    entries.push(
      checked(
        { uploader: pair.slice(0, equals).trim(), token: pair.slice(equals + 1).trim() },
        `tokens entry #${position + 1}`,
      ),
    );
  });
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const other = seen.get(entry.token);
    if (other !== undefined && other !== entry.uploader) {
      throw new UploadError('AUTH_CONFIG', `The same token is given to uploaders ${other} and ${entry.uploader}`);
    }
    seen.set(entry.token, entry.uploader);
  }
  return new TokenTable(entries);
}

function readTokensFile(file: string): TokenEntry[] {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UploadError(
      'CONFIG_FILE_UNREADABLE',
      `Cannot read tokens file ${file}: ${(error as Error).message.split('\n')[0]}`,
      { cause: error },
    );
  }
  if (data && typeof data === 'object' && !Array.isArray(data) && 'tokens' in data)
    data = (data as { tokens: unknown }).tokens;
  const where = (what: string): string => `tokens file ${file}, ${what}`;
  const entries: TokenEntry[] = [];
  if (Array.isArray(data)) {
    data.forEach((item: unknown, position) => {
      const record = item as { uploader?: unknown; name?: unknown; token?: unknown } | null;
      const uploader = record?.uploader ?? record?.name;
      if (typeof uploader !== 'string' || typeof record?.token !== 'string') {
        throw new UploadError(
          'AUTH_CONFIG',
          `Invalid ${where(`entry #${position + 1}`)}: expected {uploader, token} strings`,
        );
      }
      entries.push(checked({ uploader, token: record.token }, where(`entry #${position + 1}`)));
    });
  } else if (data && typeof data === 'object') {
    for (const [uploader, value] of Object.entries(data)) {
      const tokens = Array.isArray(value) ? value : [value];
      for (const token of tokens) {
        if (typeof token !== 'string')
          throw new UploadError('AUTH_CONFIG', `Invalid ${where(`uploader ${uploader}`)}: the token must be a string`);
        entries.push(checked({ uploader, token }, where(`uploader ${uploader}`)));
      }
    }
  } else if (data !== null && data !== undefined) {
    throw new UploadError(
      'AUTH_CONFIG',
      `Invalid tokens file ${file}: expected a mapping uploader -> token or a list of {uploader, token}`,
    );
  }
  return entries;
}

/**
 * Refuses an uploader name that is not a valid folder name, or is `anonymous` (in any case):
 * that name is the folder of requests without credentials, so a token or a certificate named so
 * would share its files with every unauthenticated client.
 */
export function checkUploaderName(uploader: string, where: string): void {
  if (uploader.toLowerCase() === ANONYMOUS) {
    throw new UploadError(
      'AUTH_CONFIG',
      `The uploader name "${uploader}" in ${where} is reserved for requests without credentials ` +
        '(their files are under completed/anonymous/): give this robot another name',
    );
  }
  if (!UPLOADER_NAME.test(uploader)) {
    throw new UploadError(
      'AUTH_CONFIG',
      `Invalid uploader name in ${where}: ${JSON.stringify(uploader)} ` +
        '(letters, digits, ".", "_", "-"; up to 64, starting with a letter or digit)',
    );
  }
}

function checked(entry: TokenEntry, where: string): TokenEntry {
  checkUploaderName(entry.uploader, where);
  const weakness = tokenWeakness(entry.token);
  if (weakness !== undefined) {
    throw new UploadError(
      'AUTH_CONFIG',
      `The token of uploader ${entry.uploader} in ${where} is too weak: ${weakness}. ` +
        'Generate one with `openssl rand -hex 32`',
    );
  }
  return entry;
}
