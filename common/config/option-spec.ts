/**
 * One option = one spec: its kind, default, range and doc comment, defined once (after p-queue's
 * `source/options.ts`). Everything else is derived from the spec: the zod validator, the
 * camelCase API key, the CLI flag (`--kebab-case`), the environment variable, the ROS parameter
 * (`snake_case`, with a descriptor) and docs/configuration.md. Never restate a default elsewhere.
 *
 * Conventions: sizes are bytes, durations are seconds, rates are bytes per second. Numeric
 * options always have a default; where "unset" means "off", the default is 0 and the doc says so.
 */

interface SpecBase {
  /** One line for `--help`, docs/configuration.md and the ROS parameter description. */
  doc: string;
  /**
   * Environment variable name, when it must differ from the derived `<PREFIX><UPPER_SNAKE>`
   * (the legacy dashboard's documented names).
   */
  env?: string;
  /** CLI flag name without dashes, when it must differ from the derived kebab-case (`server` for `uploadUrl`). */
  flag?: string;
  /** ROS parameter name, when it must differ from the derived snake_case. */
  rosName?: string;
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
