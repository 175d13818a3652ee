import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UploadError } from '../errors/upload-error.js';
import type { OptionSet } from './define-options.js';
import { didYouMean } from './suggest.js';
import type { ConfigOf, OptionSpecs } from './option-spec.js';

/** A program's own flags that are not configuration options (`--config`, `--help`, `--ros`). */
export type ExtraFlags = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommandLine<S extends OptionSpecs> {
  /** Validated option values given as flags. */
  values: Partial<ConfigOf<S>>;
  /** Raw values of the extra flags. */
  extras: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/**
 * Parses argv against the option set's derived flags (`--kebab-case`, `--no-x` for booleans,
 * lists repeatable or comma-separated) plus the program's extra flags. An unknown flag or a
 * bad value throws an UploadError whose message names it.
 */
export function parseCommandLine<S extends OptionSpecs>(
  set: OptionSet<S>,
  argv: string[],
  extra: ExtraFlags = {},
): ParsedCommandLine<S> {
  const options: ExtraFlags = { ...extra };
  const flagToKey = new Map<string, keyof S & string>();
  for (const key of set.keys()) {
    const spec = set.spec(key);
    if (spec.cli === false) continue;
    const type = {
      type: spec.kind === 'boolean' ? 'boolean' : 'string',
      ...(spec.kind === 'list' ? { multiple: true } : {}),
    } as const;
    const flag = set.names(key).flag.slice(2);
    flagToKey.set(flag, key);
    options[flag] = { ...type, ...(spec.short ? { short: spec.short } : {}) };
    for (const alias of set.aliases(key)) {
      if (alias.flag === undefined) continue;
      flagToKey.set(alias.flag, key);
      options[alias.flag] = type;
    }
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, allowNegative: true, strict: true });
  } catch (error) {
    const message =
      error instanceof Error ? error.message.replace(/\. To specify a positional argument.*$/s, '') : String(error);
    const unknown = (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    const flag = unknown ? /'(--?[^']+)'/.exec(message)?.[1] : undefined;
    const hint = flag
      ? didYouMean(
          flag,
          Object.keys(options).map((name) => `--${name}`),
        )
      : '';
    throw new UploadError(unknown ? 'CONFIG_UNKNOWN_OPTION' : 'USAGE', `${message}${hint}`, { cause: error });
  }
  const values: Partial<ConfigOf<S>> = {};
  const extras: ParsedCommandLine<S>['extras'] = {};
  for (const [flag, raw] of Object.entries(parsed.values)) {
    const key = flagToKey.get(flag);
    if (!key) {
      extras[flag] = raw;
      continue;
    }
    const value = Array.isArray(raw)
      ? raw
          .flatMap((item) => String(item).split(','))
          .map((s) => s.trim())
          .filter(Boolean)
      : raw;
    values[key] = set.parseValue(key, value, `the command line (--${flag})`);
  }
  return { values, extras, positionals: parsed.positionals };
}

/** Help text: one line per option (all, or those of `keys`) with its flag, environment variable, default and doc. */
export function formatOptionsHelp<S extends OptionSpecs>(
  set: OptionSet<S>,
  keys: readonly (keyof S & string)[] = set.keys(),
): string {
  const rows = keys
    .filter((key) => set.spec(key).cli !== false)
    .map((key) => {
      const names = set.names(key);
      const spec = set.spec(key);
      const value =
        spec.kind === 'boolean' ? '' : spec.kind === 'enum' ? ` <${spec.values.join('|')}>` : ` <${spec.kind}>`;
      const also = set
        .aliases(key)
        .filter((alias) => alias.flag !== undefined)
        .map((alias) => `, --${alias.flag}`)
        .join('');
      return [
        `  ${names.flag}${also}${value}`,
        `${spec.doc} [default: ${set.formatDefault(key)}; env ${names.env}]`,
      ] as const;
    });
  const width = Math.min(40, Math.max(...rows.map(([left]) => left.length)) + 2);
  return rows
    .map(([left, right]) =>
      left.length >= width ? `${left}\n${' '.repeat(width)}${right}` : left.padEnd(width) + right,
    )
    .join('\n');
}
