import { readFileSync } from 'node:fs';
import { parseYaml } from '../../common/text/yaml.js';

/**
 * Parameters from `--params-file` that rclnodejs drops. rclnodejs 2.2 (checked on a Humble
 * graph) applies only params-file entries keyed `/**` or by the bare node name; entries keyed by
 * the fully qualified name (`/ns/upload_agent`, `/upload_agent`) or by a pattern such as
 * `/**\/upload_agent` are silently ignored. launch_ros's `Node(name=..., namespace=...,
 * parameters=[{...}])` writes exactly such a file, so without this, launch-file parameters
 * never reach the node. This module reads the files itself and returns those entries.
 */

export interface ParamsFileEntry {
  /** Parameter name; nested maps are joined with `.` (as rcl does). */
  name: string;
  /** The value as YAML typed it. */
  value: unknown;
  file: string;
  /** The node key the entry was found under. */
  key: string;
}

/**
 * rcl/rclcpp matching of a params-file node key against a node's fully qualified name: a key
 * without a leading `/` gets one, `/**` matches any number of namespace levels (also none) and
 * `*` exactly one name.
 */
export function nodeKeyMatches(key: string, fullyQualifiedName: string): boolean {
  const pattern = key.startsWith('/') ? key : `/${key}`;
  let regex = '';
  for (let i = 0; i < pattern.length; ) {
    if (pattern.startsWith('/**', i)) {
      regex += '(?:/[^/]+)*';
      i += 3;
    } else if (pattern.charAt(i) === '*') {
      regex += '[^/]+';
      i += 1;
    } else {
      regex += pattern.charAt(i).replace(/[.+?^${}()|[\]\\]/g, '\\$&');
      i += 1;
    }
  }
  return new RegExp(`^${regex}$`).test(fullyQualifiedName);
}

/** The keys rclnodejs applies on its own (so reading them again would change nothing). */
export function isAppliedByRclnodejs(key: string, nodeName: string): boolean {
  return key === '/**' || key === nodeName;
}

/** True for a key that names this node specifically (not a wildcard shared with other nodes). */
export function isSpecificKey(key: string): boolean {
  return !key.includes('*');
}

/**
 * The entries of the given params files that apply to the node but that rclnodejs ignores, in
 * file order (later entries win). Unreadable files are reported in `problems` (rcl has already
 * read them during init, so this is rare).
 */
export function readParamsFileOverrides(
  files: readonly string[],
  node: { name: string; fullyQualifiedName: string },
  readText: (file: string) => string = (file) => readFileSync(file, 'utf8'),
): { entries: ParamsFileEntry[]; problems: string[] } {
  const entries: ParamsFileEntry[] = [];
  const problems: string[] = [];
  for (const file of files) {
    let data: unknown;
    try {
      // Integers as BigInt, as rcl types them (60 is an integer, 60.0 a double).
      data = parseYaml(readText(file), { intAsBigInt: true });
    } catch (error) {
      problems.push(`cannot read params file ${file}: ${(error as Error).message}`);
      continue;
    }
    if (!isRecord(data)) continue;
    for (const [key, section] of Object.entries(data)) {
      if (isAppliedByRclnodejs(key, node.name) || !nodeKeyMatches(key, node.fullyQualifiedName)) continue;
      const parameters = isRecord(section) ? section.ros__parameters : undefined;
      if (!isRecord(parameters)) continue;
      for (const [name, value] of flatten(parameters)) entries.push({ name, value, file, key });
    }
  }
  return { entries, problems };
}

function flatten(record: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(record).flatMap(([name, value]): [string, unknown][] =>
    isRecord(value) ? flatten(value, `${prefix}${name}.`) : [[`${prefix}${name}`, value]],
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
