import { UploadError } from '../errors/upload-error.js';
import { defaultsOf, optionSchema } from './option-schema.js';
import type { ConfigOf, OptionSpec, OptionSpecs } from './option-spec.js';
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

  names(key: keyof S & string): OptionNames {
    const spec = this.spec(key);
    return {
      key,
      flag: `--${spec.flag ?? kebabCase(key)}`,
      env: spec.env ?? `${this.envPrefix}${snakeCase(key).toUpperCase()}`,
      ros: spec.rosName ?? snakeCase(key),
    };
  }

  /** The key for a camelCase, kebab-case or snake_case name (or a flag or ROS name override), or undefined. */
  keyOf(name: string): (keyof S & string) | undefined {
    const key = camelCase(name);
    if (Object.hasOwn(this.specs, key)) return key;
    const bare = name.replace(/^-+/, '');
    return this.keys().find((k) => {
      const spec = this.spec(k);
      return spec.flag === bare || spec.rosName === bare;
    });
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
  parse(input: Record<string, unknown>, source: OptionSource = 'options'): Partial<ConfigOf<S>> {
    const result: Partial<ConfigOf<S>> = {};
    for (const [name, value] of Object.entries(input)) {
      if (value === undefined) continue;
      const key = this.keyOf(name);
      if (!key) {
        throw new UploadError('CONFIG_UNKNOWN_OPTION', `Unknown option "${name}" in ${source}`, {
          details: { option: name, source },
        });
      }
      result[key] = this.parseValue(key, value, source);
    }
    return result;
  }

  /** Reads the options' environment variables. Empty variables count as unset. */
  fromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ConfigOf<S>> {
    const result: Partial<ConfigOf<S>> = {};
    for (const key of this.keys()) {
      const name = this.names(key).env;
      const value = env[name];
      if (value === undefined || value === '') continue;
      result[key] = this.parseValue(key, value, `environment variable ${name}`);
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

export function defineOptions<const S extends OptionSpecs>(specs: S, options: { envPrefix: string }): OptionSet<S> {
  return new OptionSet(specs, options.envPrefix);
}
