import { UploadError } from '../errors/upload-error.js';
import { defaultsOf, optionSchema } from './option-schema.js';
import type { ConfigOf, OptionAlias, OptionSpec, OptionSpecs } from './option-spec.js';
import { didYouMean } from './suggest.js';
import { formatDuration, formatSize } from './units.js';

/** The names one option has in each place it can be set. */
export interface OptionNames {
  /** camelCase: the TypeScript API and config files. */
  key: string;
  /** `--kebab-case`. */
  flag: string;
  /** The environment variable. */
  env: string;
  /** snake_case ROS parameter. */
  ros: string;
}

/** Options of fromEnv. */
export interface EnvOptions {
  /**
   * Variables with the program's prefix that are not settings but are still the program's
   * (`UPLOAD_AGENT_CONFIG`): every other variable with the prefix is an error, so a misspelt
   * name never goes unnoticed.
   */
  otherNames?: readonly string[];
  /** Collects warnings (a deprecated name was used, a name was given twice) for the program to log. */
  notes?: string[];
}

/** Where a value came from, for error messages. */
export type OptionSource = 'options' | 'command line' | 'environment' | 'config file' | 'ROS parameter' | (string & {});

export function kebabCase(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

export function snakeCase(key: string): string {
  return kebabCase(key).replace(/-/g, '_');
}

export function camelCase(name: string): string {
  return name.replace(/^-+/, '').replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A set of options defined once. It validates input from any source with clear messages (the
 * option's names, the source and the value; never the value of a secret), and derives the
 * names used by the CLI, the environment and ROS.
 */
export class OptionSet<S extends OptionSpecs> {
  readonly specs: S;
  readonly envPrefix: string;

  constructor(specs: S, envPrefix: string) {
    this.specs = specs;
    this.envPrefix = envPrefix;
  }

  keys(): (keyof S & string)[] {
    return Object.keys(this.specs);
  }

  /** The spec of one option; CONFIG_UNKNOWN_OPTION for a key that is not one of this set's. */
  spec<K extends keyof S & string>(key: K): S[K] {
    const spec = Object.hasOwn(this.specs, key) ? this.specs[key] : undefined;
    if (spec === undefined) {
      throw new UploadError('CONFIG_UNKNOWN_OPTION', `Unknown option "${key}"`, { details: { option: key } });
    }
    return spec;
  }

  /** The option's names, all derived from its key by one rule (see option-spec.ts). */
  names(key: keyof S & string): OptionNames {
    return {
      key,
      flag: `--${kebabCase(key)}`,
      env: `${this.envPrefix}${snakeCase(key).toUpperCase()}`,
      ros: snakeCase(key),
    };
  }

  /** The older names an option is also accepted under. */
  aliases(key: keyof S & string): readonly OptionAlias[] {
    return this.spec(key).aliases ?? [];
  }

  /** The key for a camelCase, kebab-case or snake_case name (an alias key included), or undefined. */
  keyOf(name: string): (keyof S & string) | undefined {
    return this.lookup(name)?.key;
  }

  /** The key a name stands for, and the alias it was written as (when it is one). */
  lookup(name: string): { key: keyof S & string; alias: OptionAlias | undefined } | undefined {
    const wanted = camelCase(name);
    if (Object.hasOwn(this.specs, wanted)) return { key: wanted, alias: undefined };
    for (const key of this.keys()) {
      const alias = this.aliases(key).find((a) => a.key !== undefined && camelCase(a.key) === wanted);
      if (alias) return { key, alias };
    }
    return undefined;
  }

  /** Every name a config file or options object accepts (derived keys and alias keys), for suggestions. */
  knownKeys(): string[] {
    return [
      ...this.keys(),
      ...this.keys().flatMap((key) => this.aliases(key).flatMap((alias) => (alias.key ? [alias.key] : []))),
    ];
  }

  /** Every environment variable of the set: derived names and aliases. */
  knownEnv(): string[] {
    return [
      ...this.keys().map((key) => this.names(key).env),
      ...this.keys().flatMap((key) => this.aliases(key).flatMap((alias) => (alias.env ? [alias.env] : []))),
    ];
  }

  defaults(): ConfigOf<S> {
    return defaultsOf(this.specs);
  }

  /** Validates one value. Throws UploadError CONFIG_INVALID naming the option, the source and the value. */
  parseValue<K extends keyof S & string>(key: K, value: unknown, source: OptionSource = 'options'): ConfigOf<S>[K] {
    const spec = this.spec(key);
    const result = optionSchema(spec).safeParse(value);
    if (result.success) return result.data as ConfigOf<S>[K];
    const reason = result.error.issues.map((issue) => issue.message).join('; ');
    throw new UploadError(
      'CONFIG_INVALID',
      `Invalid ${this.describe(key)} from ${source}: ${this.show(spec, value)}: ${reason}`,
      {
        details: { option: key, source },
      },
    );
  }

  /**
   * Validates a partial set of values (an API options object, a config file, ROS parameters).
   * Keys may be camelCase, kebab-case or snake_case; an unknown key is an error naming it.
   * Undefined values are skipped.
   */
  parse(input: Record<string, unknown>, source: OptionSource = 'options', notes?: string[]): Partial<ConfigOf<S>> {
    const result: Partial<ConfigOf<S>> = {};
    for (const [name, value] of Object.entries(input)) {
      if (value === undefined) continue;
      const found = this.lookup(name);
      if (!found) {
        throw new UploadError(
          'CONFIG_UNKNOWN_OPTION',
          `Unknown option "${name}" in ${source}${didYouMean(name, this.knownKeys())}`,
          { details: { option: name, source } },
        );
      }
      if (found.alias?.deprecated)
        notes?.push(
          `"${name}" in ${source} is an old name of ${found.key}: write ${found.key} (or ${snakeCase(found.key)})`,
        );
      result[found.key] = this.parseValue(found.key, value, source);
    }
    return result;
  }

  /**
   * Reads the options' environment variables (derived names, then aliases; empty variables
   * count as unset). Any other variable with the set's prefix is an error with a suggestion
   * (`UPLOAD_SERVER_TOKEN` → did you mean UPLOAD_SERVER_TOKENS?), unless listed in `otherNames`.
   */
  fromEnv(env: NodeJS.ProcessEnv = process.env, options: EnvOptions = {}): Partial<ConfigOf<S>> {
    const known = new Set([...this.knownEnv(), ...(options.otherNames ?? [])]);
    for (const name of Object.keys(env).sort()) {
      if (!name.startsWith(this.envPrefix) || known.has(name)) continue;
      throw new UploadError(
        'CONFIG_UNKNOWN_OPTION',
        `Unknown environment variable ${name}${didYouMean(name, known)}: ` +
          `every ${this.envPrefix}* variable must be a setting (unset it or fix its name)`,
        { details: { option: name, source: 'environment' } },
      );
    }
    const result: Partial<ConfigOf<S>> = {};
    for (const key of this.keys()) {
      const name = this.names(key).env;
      const value = env[name];
      if (value !== undefined && value !== '')
        result[key] = this.parseValue(key, value, `environment variable ${name}`);
      for (const alias of this.aliases(key)) {
        if (alias.env === undefined) continue;
        const old = env[alias.env];
        if (old === undefined || old === '') continue;
        if (key in result) {
          if (old !== value) notes(options, `${alias.env} is ignored: ${name} is set too, and wins`);
          continue;
        }
        result[key] = this.parseValue(key, old, `environment variable ${alias.env}`);
        if (alias.deprecated) notes(options, `${alias.env} is an old name: use ${name}`);
      }
    }
    return result;
  }

  /** Defaults, then each layer in order (later wins). */
  resolve(...layers: Partial<ConfigOf<S>>[]): ConfigOf<S> {
    const result = this.defaults();
    for (const layer of layers) {
      for (const [key, value] of Object.entries(layer)) {
        if (value !== undefined) (result as Record<string, unknown>)[key] = value;
      }
    }
    return result;
  }

  /** `bandwidthLimit (--bandwidth-limit, UPLOAD_AGENT_BANDWIDTH_LIMIT)`. */
  describe(key: keyof S & string): string {
    const names = this.names(key);
    return `${key} (${names.flag}, ${names.env})`;
  }

  /** The default as people write it, for help text and docs/configuration.md. */
  formatDefault(key: keyof S & string): string {
    const spec = this.spec(key);
    if (!('default' in spec) || spec.default === undefined) return '(unset)';
    if (spec.kind === 'size') return formatSize(spec.default);
    if (spec.kind === 'duration') return formatDuration(spec.default);
    if (spec.kind === 'list') return spec.default.length ? spec.default.join(',') : '(none)';
    return String(spec.default);
  }

  private show(spec: OptionSpec, value: unknown): string {
    if (spec.secret) return '(value hidden)';
    const text = typeof value === 'bigint' ? `${value}` : JSON.stringify(value);
    return text && text.length > 200 ? `${text.slice(0, 200)}…` : String(text);
  }
}

function notes(options: EnvOptions, note: string): void {
  options.notes?.push(note);
}

export function defineOptions<const S extends OptionSpecs>(specs: S, options: { envPrefix: string }): OptionSet<S> {
  return new OptionSet(specs, options.envPrefix);
}
