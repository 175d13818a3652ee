/**
 * Writes the option tables of docs/configuration.md from the option schema, so the reference can
 * never disagree with the programs: `npm run docs:config` (rewrite) or
 * `npm run docs:config -- --check` (exit 1 when the file is out of date; `--file PATH` checks or
 * rewrites another copy). test/docs/configuration.test.ts checks it in `npm test`.
 *
 * Only the regions between `<!-- BEGIN GENERATED <name> ... -->` and `<!-- END GENERATED <name> -->`
 * are written; the prose around them is edited by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  formatDuration,
  formatSize,
  type OptionSet,
  type OptionSpec,
  type OptionSpecs,
} from '../common/config/index.js';
import { agentOptions } from '../agent/app/agent-options.js';
import { serverOptions } from '../server/config/server-options.js';

export const CONFIG_DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

/** The generated regions of docs/configuration.md, by name. */
export const generatedRegions: Record<string, () => string> = {
  'agent-options': () => optionsTable(agentOptions, { ros: true }),
  'server-options': () => optionsTable(serverOptions, { ros: false }),
  'option-aliases': () => aliasesTable(),
};

/** Every alias of both programs: the older name, what it stands for, and whether it warns. */
export function aliasesTable(): string {
  const lines = ['| Program | Older name | Where | Stands for | Warns |', '|---|---|---|---|---|'];
  const sets: [string, OptionSet<OptionSpecs>][] = [
    ['ros2-upload-agent', agentOptions as unknown as OptionSet<OptionSpecs>],
    ['ros2-upload-server', serverOptions as unknown as OptionSet<OptionSpecs>],
  ];
  for (const [program, set] of sets) {
    for (const key of set.keys()) {
      const names = set.names(key);
      for (const alias of set.aliases(key)) {
        const [name, where, canonical] =
          alias.env !== undefined
            ? [alias.env, 'environment', names.env]
            : alias.flag !== undefined
              ? [`--${alias.flag}`, 'command line', names.flag]
              : [alias.key!, 'config file, library', key];
        lines.push(
          `| ${program} | ${code(name)} | ${where} | ${code(canonical)} | ${alias.deprecated ? 'yes' : 'no'} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

/** A table cell: `|` escaped, and `<` outside code spans too, so `<watch root>` is not read as an HTML tag. */
const cell = (text: string): string =>
  text
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, '&lt;') : part))
    .join('`')
    .replace(/\|/g, '\\|');
const code = (text: string): string => `\`${text}\``;

/** What values an option takes, with its range: `size, 1 KiB–64 MiB`, `keep, delete, move`. */
export function acceptedValues(spec: OptionSpec): string {
  const secret = spec.secret ? ' (secret)' : '';
  switch (spec.kind) {
    case 'size':
      return `size${range(spec.min, spec.max, formatSize)}`;
    case 'duration':
      return `duration${range(spec.min, spec.max, formatDuration)}`;
    case 'integer':
    case 'number':
      return `${spec.kind}${range(spec.min, spec.max, String, true)}`;
    case 'boolean':
      return 'boolean';
    case 'enum':
      return spec.values.map(code).join(', ');
    case 'list':
      return `list${secret}`;
    case 'string':
      return `${spec.format === 'url' ? 'http(s) URL' : spec.format === 'path' ? 'path' : 'text'}${secret}`;
  }
}

/**
 * `, 1–64`, `, ≥ 10ms`, `, ≤ 1h`, or nothing. A lower bound of 0 is left out for sizes and
 * durations (they cannot be negative anyway) but shown for plain numbers.
 */
function range(
  min: number | undefined,
  max: number | undefined,
  format: (value: number) => string,
  showZero = false,
): string {
  const low = min !== undefined && (min !== 0 || showZero) ? min : undefined;
  if (low !== undefined && max !== undefined) return `, ${format(low)}–${format(max)}`;
  if (max !== undefined) return `, ≤ ${format(max)}`;
  if (low !== undefined) return `, ≥ ${format(low)}`;
  return '';
}

/** One Markdown table row per option: its names in every place it can be set, values, default and meaning. */
export function optionsTable<S extends OptionSpecs>(set: OptionSet<S>, options: { ros: boolean }): string {
  const head = [
    'Option',
    'Flag',
    'Environment',
    ...(options.ros ? ['ROS parameter'] : []),
    'Accepts',
    'Default',
    'Meaning',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const key of set.keys()) {
    const spec = set.spec(key);
    const names = set.names(key);
    const row = [
      code(key),
      spec.cli === false ? '(none)' : code(names.flag),
      code(names.env),
      ...(options.ros ? [spec.ros === false ? '(none)' : code(names.ros)] : []),
      acceptedValues(spec),
      set.formatDefault(key),
      spec.doc,
    ];
    lines.push(`| ${row.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

const begin = (name: string): RegExp => new RegExp(`^<!-- BEGIN GENERATED ${name}\\b[^\\n]*-->$`, 'm');
const end = (name: string): string => `<!-- END GENERATED ${name} -->`;

/** The document with every generated region rewritten. Throws when a region's markers are missing. */
export function renderConfigDoc(text: string): string {
  let result = text;
  for (const [name, generate] of Object.entries(generatedRegions)) {
    const start = begin(name).exec(result);
    const stop = result.indexOf(end(name));
    if (!start || stop < start.index)
      throw new Error(`docs/configuration.md has no region "${name}" (${begin(name).source} … ${end(name)})`);
    const after = start.index + start[0].length;
    result = `${result.slice(0, after)}\n${generate()}\n${result.slice(stop)}`;
  }
  return result;
}

/** `[--check] [--file PATH]`: rewrite the file (default docs/configuration.md), or only check it. */
function main(argv: string[]): number {
  const check = argv.includes('--check');
  const fileAt = argv.indexOf('--file');
  const file = (fileAt >= 0 ? argv[fileAt + 1] : undefined) || CONFIG_DOC;
  const current = readFileSync(file, 'utf8');
  const wanted = renderConfigDoc(current);
  if (current === wanted) {
    process.stdout.write(`${file} is up to date with the option schema\n`);
    return 0;
  }
  if (check) {
    process.stderr.write(`${file} is out of date with the option schema: run \`npm run docs:config\`\n`);
    return 1;
  }
  writeFileSync(file, wanted);
  process.stdout.write(`${file} rewritten from the option schema\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`generate-config-docs: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
