import { readFileSync } from 'node:fs';
import { parseYaml } from '../../common/text/yaml.js';
import { UploadError } from '../../common/errors/upload-error.js';

/**
 * Reads an S3 key pair from a YAML or JSON file: `accessKeyId` and `secretAccessKey` (also
 * `access_key_id`/`access-key-id`, ...). The secret is never part of an error message.
 */
export function readS3Credentials(file: string): { accessKeyId: string; secretAccessKey: string } {
  let data: unknown;
  try {
    data = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UploadError(
      'CONFIG_FILE_UNREADABLE',
      `Cannot read the S3 credentials file ${file}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const record = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const pick = (name: string): string | undefined => {
    for (const [key, value] of Object.entries(record))
      if (key.replace(/[-_]/g, '').toLowerCase() === name.toLowerCase() && typeof value === 'string' && value !== '')
        return value;
    return undefined;
  };
  const accessKeyId = pick('accessKeyId');
  const secretAccessKey = pick('secretAccessKey');
  if (!accessKeyId || !secretAccessKey)
    throw new UploadError(
      'CONFIG_FILE_UNREADABLE',
      `The S3 credentials file ${file} must have accessKeyId and secretAccessKey (strings)`,
    );
  return { accessKeyId, secretAccessKey };
}
