import path from 'node:path';
import { parseYaml } from '../../common/text/yaml.js';

/** The name rosbag2 gives a bag's description, written last when a recording stops. */
export const BAG_METADATA = 'metadata.yaml';

/** The largest metadata.yaml read (a long recording lists thousands of topics and splits; 1 MiB holds them). */
export const MAX_METADATA_BYTES = 1024 * 1024;

/** What a bag's metadata.yaml promises. */
export interface BagManifest {
  /** rosbag2's metadata version (5 in Humble, 9 in Jazzy); 0 when absent. */
  version: number;
  storageIdentifier: string | null;
  /** The files of the bag, as names inside the bag folder, in recording order, without duplicates. */
  files: string[];
}

/**
 * Reads rosbag2's metadata.yaml (`rosbag2_bagfile_information`). `relative_file_paths` is the list
 * rosbag2 itself opens (every version has it), with the names as they are on disk: compressed
 * splits keep their `.zstd` suffix there, while `files[].path` (version 5 and later) names the
 * uncompressed split. So `relative_file_paths` is used, and `files[].path` only when it is absent
 * (with `.zstd` added in file compression mode). Old versions wrote paths that begin with the bag
 * folder's name; a split is always in the bag folder, so only the last component counts. Throws
 * an Error with a message naming the problem for anything that is not such a file.
 */
export function parseBagMetadata(text: string): BagManifest {
  let document: unknown;
  try {
    document = parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new Error(`metadata.yaml is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const info = record(record(document)?.rosbag2_bagfile_information);
  if (!info) throw new Error('metadata.yaml has no rosbag2_bagfile_information section');
  const version = typeof info.version === 'number' && Number.isInteger(info.version) ? info.version : 0;
  const storageIdentifier = typeof info.storage_identifier === 'string' ? info.storage_identifier : null;
  let listed: unknown[] | undefined = Array.isArray(info.relative_file_paths) ? info.relative_file_paths : undefined;
  if (listed === undefined && Array.isArray(info.files)) {
    const compressed = info.compression_mode === 'FILE' && typeof info.compression_format === 'string';
    const suffix = compressed && info.compression_format !== '' ? `.${info.compression_format}` : '';
    listed = info.files.map((entry) => {
      const name = record(entry)?.path;
      return typeof name === 'string' && suffix !== '' && !name.endsWith(suffix) ? `${name}${suffix}` : name;
    });
  }
  if (listed === undefined) throw new Error('metadata.yaml lists no files (no relative_file_paths or files)');
  const files: string[] = [];
  for (const entry of listed) {
    if (typeof entry !== 'string' || entry.trim() === '') throw new Error('metadata.yaml lists a file without a name');
    const name = path.posix.basename(entry.replace(/\\/g, '/'));
    if (name === '' || name === '.' || name === '..' || name === BAG_METADATA) {
      throw new Error(`metadata.yaml lists ${JSON.stringify(entry)}, which cannot be a split of the bag`);
    }
    if (!files.includes(name)) files.push(name);
  }
  return { version, storageIdentifier, files };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** File name endings of rosbag2 splits: MCAP and SQLite, plain or compressed per file. */
const SPLIT = /\.(mcap|db3)(\.zstd)?$/i;

/**
 * The bag folder a stored file belongs to, or undefined: a file is in a bag when it is a split
 * (`.mcap`, `.db3`, optionally `.zstd`) or a metadata.yaml inside a folder. Other files (the
 * agent's include globs: configs, logs) do not make a folder a bag, but count in one that is.
 */
export function bagFolderOf(relativePath: string): string | undefined {
  const slash = relativePath.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const name = relativePath.slice(slash + 1);
  return name === BAG_METADATA || SPLIT.test(name) ? relativePath.slice(0, slash) : undefined;
}

/** The folder of a stored file (undefined at the uploader's top level). */
export function folderOf(relativePath: string): string | undefined {
  const slash = relativePath.lastIndexOf('/');
  return slash <= 0 ? undefined : relativePath.slice(0, slash);
}
