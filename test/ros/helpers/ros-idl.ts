import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A small reader of ROS 2 `.msg`/`.srv` files (rosidl's line format) and a checker of message
 * objects against them with rclnodejs 2.x's value rules (int64/uint64 as BigInt, other integers
 * as numbers in range, nested messages as objects, arrays as arrays). Test-only.
 */

export interface IdlField {
  name: string;
  /** Base type: `uint64`, `string`, `builtin_interfaces/Time`, `UploadStatus`, ... */
  type: string;
  array: boolean;
}

export interface IdlConstant {
  name: string;
  type: string;
  value: string;
}

export interface IdlMessage {
  /** `pkg/Name` */
  name: string;
  fields: IdlField[];
  constants: IdlConstant[];
}

const PRIMITIVES = new Set([
  'bool',
  'byte',
  'char',
  'float32',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'string',
  'wstring',
]);

const INTEGER_RANGES: Record<string, [number, number]> = {
  byte: [0, 255],
  char: [0, 255],
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
};

const BIGINT_RANGES: Record<string, [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** Parses the body of a .msg file (or one half of a .srv). `pkg` qualifies same-package types. */
export function parseMessage(text: string, name: string): IdlMessage {
  const pkg = name.split('/')[0]!;
  const message: IdlMessage = { name, fields: [], constants: [] };
  for (const rawLine of text.split('\n')) {
    const typeMatch = /^\s*([A-Za-z0-9_/]+)(?:<=\d+)?(\[(?:<=)?\d*\])?\s+(.*)$/.exec(rawLine.replace(/\r$/, ''));
    if (!typeMatch || rawLine.trim().startsWith('#')) {
      if (rawLine.trim() && !rawLine.trim().startsWith('#')) throw new Error(`${name}: cannot parse line: ${rawLine}`);
      continue;
    }
    const [, rawType, arraySuffix, rest] = typeMatch as unknown as [string, string, string | undefined, string];
    const type = PRIMITIVES.has(rawType) || rawType.includes('/') ? rawType : `${pkg}/${rawType}`;
    const constant = /^([A-Z][A-Z0-9_]*)\s*=\s*(.*)$/.exec(rest);
    if (constant) {
      const value = type === 'string' ? constant[2]!.trim() : constant[2]!.replace(/#.*$/, '').trim();
      message.constants.push({ name: constant[1]!, type, value });
      continue;
    }
    const field = /^([a-z][a-z0-9_]*)(?:\s+[^#]*)?(?:#.*)?$/.exec(rest.trim());
    if (!field) throw new Error(`${name}: cannot parse field: ${rawLine}`);
    message.fields.push({ name: field[1]!, type, array: arraySuffix !== undefined });
  }
  return message;
}

/** Parses a .srv file into its request and response halves. */
export function parseService(text: string, name: string): { request: IdlMessage; response: IdlMessage } {
  const parts = text.split(/^---\s*$/m);
  if (parts.length !== 2) throw new Error(`${name}: a .srv file needs exactly one --- line`);
  return { request: parseMessage(parts[0]!, `${name}_Request`), response: parseMessage(parts[1]!, `${name}_Response`) };
}

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/interfaces/', import.meta.url));

/** Where each interface file lives: ours in msgs/upload_agent_msgs/, upstream ones in test/ros/fixtures/interfaces/. */
export function interfaceFile(type: string): string {
  const [pkg, kind, name] = type.split('/') as [string, string, string];
  if (pkg === 'upload_agent_msgs') return `${root}msgs/upload_agent_msgs/${kind}/${name}.${kind}`;
  return `${fixtures}${pkg}/${kind}/${name}.${kind}`;
}

/** Loads `pkg/msg/Name` (or `pkg/Name` for a message). */
export function loadMessage(type: string): IdlMessage {
  const parts = type.split('/');
  const full = parts.length === 2 ? `${parts[0]}/msg/${parts[1]}` : type;
  const [pkg, , name] = full.split('/') as [string, string, string];
  return parseMessage(readFileSync(interfaceFile(full), 'utf8'), `${pkg}/${name}`);
}

export function loadService(type: string): { request: IdlMessage; response: IdlMessage } {
  const [pkg, , name] = type.split('/') as [string, string, string];
  return parseService(readFileSync(interfaceFile(type), 'utf8'), `${pkg}/${name}`);
}

/**
 * Problems of `value` as a `definition` message, as rclnodejs would see them; [] when it fits.
 * Every field of the definition must be present, and no other field. `resolve` loads nested types.
 */
export function checkMessage(
  value: unknown,
  definition: IdlMessage,
  resolve: (type: string) => IdlMessage = loadMessage,
  path = definition.name,
): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${path}: expected a message object, got ${describe(value)}`];
  const record = value as Record<string, unknown>;
  const problems: string[] = [];
  const names = new Set(definition.fields.map((field) => field.name));
  for (const key of Object.keys(record))
    if (!names.has(key)) problems.push(`${path}.${key}: not a field of ${definition.name}`);
  for (const field of definition.fields) {
    if (!(field.name in record)) {
      problems.push(`${path}.${field.name}: missing`);
      continue;
    }
    const item = record[field.name];
    if (field.array) {
      if (!Array.isArray(item)) problems.push(`${path}.${field.name}: expected an array, got ${describe(item)}`);
      else
        for (const [index, element] of item.entries())
          problems.push(...checkValue(element, field.type, resolve, `${path}.${field.name}[${index}]`));
    } else {
      problems.push(...checkValue(item, field.type, resolve, `${path}.${field.name}`));
    }
  }
  return problems;
}

function checkValue(value: unknown, type: string, resolve: (type: string) => IdlMessage, path: string): string[] {
  if (type === 'bool') return typeof value === 'boolean' ? [] : [`${path}: expected a boolean, got ${describe(value)}`];
  if (type === 'string' || type === 'wstring')
    return typeof value === 'string' ? [] : [`${path}: expected a string, got ${describe(value)}`];
  if (type === 'float32' || type === 'float64')
    return typeof value === 'number' ? [] : [`${path}: expected a number, got ${describe(value)}`];
  const bigRange = BIGINT_RANGES[type];
  if (bigRange) {
    if (typeof value !== 'bigint')
      return [`${path}: ${type} must be a BigInt (rclnodejs refuses a number), got ${describe(value)}`];
    return value < bigRange[0] || value > bigRange[1] ? [`${path}: ${value} is out of range for ${type}`] : [];
  }
  const range = INTEGER_RANGES[type];
  if (range) {
    if (typeof value !== 'number' || !Number.isInteger(value))
      return [`${path}: ${type} must be an integer number, got ${describe(value)}`];
    return value < range[0] || value > range[1] ? [`${path}: ${value} is out of range for ${type}`] : [];
  }
  return checkMessage(value, resolve(type), resolve, path);
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `BigInt ${value}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}
