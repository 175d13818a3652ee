/**
 * One option = one spec: its kind, default, range and doc comment, defined once (after p-queue's
 * `source/options.ts`). Everything else is derived from the spec and its key by one rule
 * (docs/configuration.md, "Names"): the camelCase key is the library option and the config file
 * key (which may also be written kebab-case or snake_case), the flag is `--kebab-case`, the
 * environment variable is the program's prefix plus UPPER_SNAKE_CASE, the ROS parameter
 * snake_case. Older names are accepted as `aliases`, never instead. Never restate a default
 * elsewhere.
 *
 * Conventions: sizes are bytes, durations are seconds, rates are bytes per second. Numeric
 * options always have a default; where "unset" means "off", the default is 0 and the doc says so.
 */

/**
 * Another name an option is accepted under: an environment variable, a flag (without dashes) or
 * a key (config files and library options; kebab-case and snake_case forms work too). A
 * `deprecated` alias works but logs a warning naming the derived name.
 */
export interface OptionAlias {
  env?: string;
  flag?: string;
  key?: string;
  deprecated?: boolean;
}

interface SpecBase {
  /** One line for `--help`, docs/configuration.md and the ROS parameter description. */
  doc: string;
  /** Older names still accepted (the legacy Python system's, this project's earlier ones). */
  aliases?: readonly OptionAlias[];
  /** One-letter CLI alias. */
  short?: string;
  /** A secret (a token or key): never logged, printed or echoed back in an error. */
  secret?: boolean;
  /** Set false for options that make no sense as a ROS parameter. */
  ros?: boolean;
  /** Set false for options that make no sense as a CLI flag. */
  cli?: boolean;
}

interface NumericSpecBase extends SpecBase {
  default: number;
  min?: number;
  max?: number;
}

/** Bytes; accepts `8MiB`, `500k`, `1048576`. */
export interface SizeSpec extends NumericSpecBase {
  kind: 'size';
}

/** Seconds; accepts `30s`, `5m`, `500ms`, `2.5`. */
export interface DurationSpec extends NumericSpecBase {
  kind: 'duration';
}

export interface IntegerSpec extends NumericSpecBase {
  kind: 'integer';
}

export interface NumberSpec extends NumericSpecBase {
  kind: 'number';
}

export interface BooleanSpec extends SpecBase {
  kind: 'boolean';
  default: boolean;
}

/** A string. Without a default it is optional (`undefined` when unset; `''` also means unset). */
export interface StringSpec extends SpecBase {
  kind: 'string';
  default?: string;
  /** `url`: must parse as an http(s) URL. `path`: a file system path (`~/` is expanded). */
  format?: 'url' | 'path';
}

export interface EnumSpec<V extends string = string> extends SpecBase {
  kind: 'enum';
  values: readonly V[];
  default: V;
}

/** A list of strings; from a string it is split on commas. */
export interface ListSpec extends SpecBase {
  kind: 'list';
  default: readonly string[];
}

export type OptionSpec =
  | SizeSpec
  | DurationSpec
  | IntegerSpec
  | NumberSpec
  | BooleanSpec
  | StringSpec
  | EnumSpec
  | ListSpec;

export type OptionSpecs = Record<string, OptionSpec>;

/** The value type an option has after validation. */
export type OptionValue<S extends OptionSpec> = S extends { kind: 'size' | 'duration' | 'integer' | 'number' }
  ? number
  : S extends { kind: 'boolean' }
    ? boolean
    : S extends { kind: 'list' }
      ? string[]
      : S extends EnumSpec<infer V>
        ? V
        : S extends { kind: 'string'; default: string }
          ? string
          : string | undefined;

/** The validated configuration object for a set of specs. */
export type ConfigOf<S extends OptionSpecs> = { -readonly [K in keyof S]: OptionValue<S[K]> };

/** Helpers that keep literal types (enum values) while writing specs. */
export const option = {
  size: (spec: Omit<SizeSpec, 'kind'>): SizeSpec => ({ kind: 'size', ...spec }),
  duration: (spec: Omit<DurationSpec, 'kind'>): DurationSpec => ({ kind: 'duration', ...spec }),
  integer: (spec: Omit<IntegerSpec, 'kind'>): IntegerSpec => ({ kind: 'integer', ...spec }),
  number: (spec: Omit<NumberSpec, 'kind'>): NumberSpec => ({ kind: 'number', ...spec }),
  boolean: (spec: Omit<BooleanSpec, 'kind'>): BooleanSpec => ({ kind: 'boolean', ...spec }),
  string: <const S extends Omit<StringSpec, 'kind'>>(spec: S): S & { kind: 'string' } => ({ kind: 'string', ...spec }),
  enum: <const V extends string>(spec: Omit<EnumSpec<V>, 'kind'>): EnumSpec<V> => ({ kind: 'enum', ...spec }),
  list: (spec: Omit<ListSpec, 'kind'>): ListSpec => ({ kind: 'list', ...spec }),
};
