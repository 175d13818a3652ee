import { readFileSync } from 'node:fs';
import { parseYaml } from '../text/yaml.js';
import { UploadError } from '../errors/upload-error.js';
import type { OptionSet } from './define-options.js';
import type { ConfigOf, OptionSpecs } from './option-spec.js';

/**
 * Reads a YAML or JSON config file (YAML is a superset of JSON, so one parser serves both).
 * Keys may be camelCase, kebab-case or snake_case; unknown keys and bad values are errors that
 * name the file. `section`, when given and present at the top level, selects a nested object
 * (so one file can hold `agent:` and `server:` settings).
 */
export function readConfigFile<S extends OptionSpecs>(
  set: OptionSet<S>,
  file: string,
  section?: string,
  notes?: string[],
): Partial<ConfigOf<S>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UploadError('CONFIG_FILE_UNREADABLE', `Cannot read config file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (error) {
    throw new UploadError(
      'CONFIG_FILE_UNREADABLE',
      `Config file ${file} is not valid YAML or JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new UploadError(
      'CONFIG_FILE_UNREADABLE',
      `Config file ${file} must contain a mapping of option names to values`,
    );
  }
  let record = data as Record<string, unknown>;
  if (section && typeof record[section] === 'object' && record[section] !== null)
    record = record[section] as Record<string, unknown>;
  return set.parse(record, `config file ${file}`, notes);
}
