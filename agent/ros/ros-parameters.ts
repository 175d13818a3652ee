import {
  formatDuration,
  formatSize,
  optionSchema,
  type OptionSet,
  type OptionSpec,
  type OptionSpecs,
} from '../../common/config/index.js';
import { ParameterType, type ParameterDeclaration, type ParameterTypeCode, type RosParameter } from './ros-seam.js';

/**
 * ROS parameters derived from an option set (the same specs as the CLI flags, environment
 * variables and config files): one parameter per option whose spec does not say `ros: false`,
 * named `set.names(key).ros` (snake_case), typed and described from the spec. Nothing here
 * lists options by name, so options added to the set become parameters by themselves.
 */

/** One option as a ROS parameter. */
export interface ParameterOption {
  /** camelCase option key (what AgentController.setOption takes). */
  key: string;
  /** snake_case parameter name. */
  name: string;
  spec: OptionSpec;
  type: ParameterTypeCode;
}

/** The result of check(): the validated configuration value, or a refusal with its reason. */
export type ParameterCheck =
  | { ok: true; option: ParameterOption | undefined; value: unknown }
  | { ok: false; reason: string };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const typeNames: Record<number, string> = {
  [ParameterType.NOT_SET]: 'nothing',
  [ParameterType.BOOL]: 'a bool',
  [ParameterType.INTEGER]: 'an integer',
  [ParameterType.DOUBLE]: 'a double',
  [ParameterType.STRING]: 'a string',
  [ParameterType.BYTE_ARRAY]: 'a byte array',
  [ParameterType.BOOL_ARRAY]: 'a bool array',
  [ParameterType.INTEGER_ARRAY]: 'an integer array',
  [ParameterType.DOUBLE_ARRAY]: 'a double array',
  [ParameterType.STRING_ARRAY]: 'a string array',
};

/** The ROS parameter type of an option kind. */
export function parameterTypeOf(spec: OptionSpec): ParameterTypeCode {
  switch (spec.kind) {
    case 'size':
    case 'integer':
      return ParameterType.INTEGER;
    case 'duration':
    case 'number':
      return ParameterType.DOUBLE;
    case 'boolean':
      return ParameterType.BOOL;
    case 'string':
    case 'enum':
      return ParameterType.STRING;
    case 'list':
      return ParameterType.STRING_ARRAY;
  }
}

export class ParameterSchema<S extends OptionSpecs = OptionSpecs> {
  readonly set: OptionSet<S>;
  readonly options: readonly ParameterOption[];
  readonly #byName: Map<string, ParameterOption>;

  constructor(set: OptionSet<S>) {
    this.set = set;
    this.options = set
      .keys()
      .filter((key) => set.spec(key).ros !== false)
      .map((key) => {
        const spec = set.spec(key);
        return { key, name: set.names(key).ros, spec, type: parameterTypeOf(spec) };
      });
    this.#byName = new Map(this.options.map((option) => [option.name, option]));
  }

  byName(name: string): ParameterOption | undefined {
    return this.#byName.get(name);
  }

  /**
   * The declaration of one parameter with the value in force. A secret (token, key) is declared
   * read-only with an empty value, so `ros2 param get` never shows it; it can still be given at
   * launch (params file, `-p`), which the node reads before declaring.
   */
  declaration(option: ParameterOption, value: unknown): ParameterDeclaration {
    const { spec } = option;
    const declaration: ParameterDeclaration = {
      name: option.name,
      type: option.type,
      value: spec.secret ? '' : this.toParameterValue(option, value),
      description: this.#description(option),
      additionalConstraints: this.#constraints(option),
      readOnly: spec.secret === true,
    };
    const range = this.#range(option);
    if (range) declaration.range = range;
    return declaration;
  }

  /** A configuration value as the parameter's value (INTEGER as BigInt, unset strings as ''). */
  toParameterValue(option: ParameterOption, value: unknown): ParameterDeclaration['value'] {
    switch (option.type) {
      case ParameterType.INTEGER:
        return typeof value === 'bigint' ? value : BigInt(Math.round(Number(value ?? 0)));
      case ParameterType.DOUBLE:
        return Number(value ?? 0);
      case ParameterType.BOOL:
        return value === true;
      case ParameterType.STRING_ARRAY:
        return Array.isArray(value) ? value.map(String) : [];
      default:
        return value === undefined || value === null ? '' : String(value);
    }
  }

  /**
   * Converts a parameter given with another type into the declared one where the meaning is
   * unambiguous, so `ros2 param set ... bandwidth_limit 2MiB`, `upload_timeout 60` (an integer
   * for a double) and `include "*.mcap,*.db3"` work. Anything else is returned unchanged and
   * refused by check() with a clear reason.
   */
  coerce(parameter: RosParameter): RosParameter {
    const option = this.#byName.get(parameter.name);
    if (!option || parameter.type === option.type) return parameter;
    const { value } = parameter;
    const as = (type: ParameterTypeCode, converted: unknown): RosParameter => ({
      name: parameter.name,
      type,
      value: converted,
    });
    const parsed = (): unknown => {
      const result = optionSchema(option.spec).safeParse(value);
      return result.success ? result.data : undefined;
    };
    switch (option.type) {
      case ParameterType.INTEGER: {
        if (parameter.type === ParameterType.DOUBLE && Number.isInteger(value))
          return as(ParameterType.INTEGER, BigInt(value as number));
        if (parameter.type === ParameterType.STRING) {
          const number = parsed();
          if (typeof number === 'number' && Number.isInteger(number)) return as(ParameterType.INTEGER, BigInt(number));
        }
        return parameter;
      }
      case ParameterType.DOUBLE: {
        if (parameter.type === ParameterType.INTEGER && typeof value === 'bigint')
          return as(ParameterType.DOUBLE, Number(value));
        if (parameter.type === ParameterType.STRING) {
          const number = parsed();
          if (typeof number === 'number') return as(ParameterType.DOUBLE, number);
        }
        return parameter;
      }
      case ParameterType.BOOL: {
        const bool = parameter.type === ParameterType.STRING ? parsed() : undefined;
        return typeof bool === 'boolean' ? as(ParameterType.BOOL, bool) : parameter;
      }
      case ParameterType.STRING:
        if (
          parameter.type === ParameterType.INTEGER ||
          parameter.type === ParameterType.DOUBLE ||
          parameter.type === ParameterType.BOOL
        ) {
          return as(ParameterType.STRING, String(value));
        }
        return parameter;
      case ParameterType.STRING_ARRAY: {
        const list = parameter.type === ParameterType.STRING ? parsed() : undefined;
        return Array.isArray(list) ? as(ParameterType.STRING_ARRAY, list) : parameter;
      }
      default:
        return parameter;
    }
  }

  /**
   * Validates one parameter against its option's spec: its type, then the shared schema (range,
   * URL, enum values). A refusal names the parameter, the value (never a secret's) and the rule.
   * Parameters that are not ours (`use_sim_time`, ...) pass unchanged with `option` undefined.
   */
  check(parameter: RosParameter): ParameterCheck {
    const option = this.#byName.get(parameter.name);
    if (!option) return { ok: true, option: undefined, value: parameter.value };
    const shown = this.#show(option, parameter.value);
    if (parameter.type === ParameterType.NOT_SET)
      return { ok: false, reason: `${option.name} cannot be deleted or unset (set it to another value instead)` };
    if (parameter.type !== option.type) {
      return {
        ok: false,
        reason:
          `${option.name} must be ${this.#typeText(option)}, not ` +
          `${typeNames[parameter.type] ?? `type ${parameter.type}`}${shown ? ` (${shown})` : ''}`,
      };
    }
    const result = optionSchema(option.spec).safeParse(parameter.value);
    if (!result.success) {
      const rule = result.error.issues.map((issue) => issue.message).join('; ');
      return { ok: false, reason: `${option.name} = ${shown || '(hidden)'} refused: ${rule}` };
    }
    return { ok: true, option, value: result.data };
  }

  #show(option: ParameterOption, value: unknown): string {
    if (option.spec.secret) return '';
    const text =
      typeof value === 'bigint'
        ? value.toString()
        : JSON.stringify(value, (_key, item: unknown) => (typeof item === 'bigint' ? item.toString() : item));
    return text && text.length > 120 ? `${text.slice(0, 120)}…` : (text ?? String(value));
  }

  #typeText(option: ParameterOption): string {
    switch (option.spec.kind) {
      case 'size':
        return 'an integer number of bytes (or a string with a unit, such as 2MiB)';
      case 'integer':
        return 'an integer';
      case 'duration':
        return 'a double number of seconds (or a string such as 30s or 5m)';
      case 'number':
        return 'a double';
      case 'boolean':
        return 'a bool';
      case 'enum':
        return `a string, one of ${option.spec.values.join(', ')}`;
      case 'list':
        return 'a string array (or one comma-separated string)';
      case 'string':
        return 'a string';
    }
  }

  #description(option: ParameterOption): string {
    const { spec } = option;
    // The unit is in additional_constraints ("an integer number of bytes", "a double number of seconds").
    const secret = spec.secret
      ? ' Secret: give it at launch (params file or -p) or through the environment; it reads back empty.'
      : '';
    return `${spec.doc}. Default: ${this.set.formatDefault(option.key as keyof S & string)}.${secret}`;
  }

  #constraints(option: ParameterOption): string {
    const { spec } = option;
    const parts: string[] = [this.#typeText(option)];
    if (spec.kind === 'size' || spec.kind === 'duration' || spec.kind === 'integer' || spec.kind === 'number') {
      const show = (n: number): string =>
        spec.kind === 'size'
          ? `${n} (${formatSize(n)})`
          : spec.kind === 'duration'
            ? `${n} (${formatDuration(n)})`
            : String(n);
      if (spec.min !== undefined) parts.push(`at least ${show(spec.min)}`);
      if (spec.max !== undefined) parts.push(`at most ${show(spec.max)}`);
    }
    if (spec.kind === 'string' && spec.format === 'url') parts.push('an http:// or https:// URL; empty means unset');
    if (spec.kind === 'string' && spec.format === 'path') parts.push('a path; ~/ is expanded; empty means unset');
    return parts.join('; ');
  }

  #range(option: ParameterOption): ParameterDeclaration['range'] {
    const { spec } = option;
    if (spec.kind !== 'size' && spec.kind !== 'duration' && spec.kind !== 'integer' && spec.kind !== 'number')
      return undefined;
    if (spec.min === undefined && spec.max === undefined) return undefined;
    if (option.type === ParameterType.INTEGER) {
      return {
        kind: 'integer',
        from: spec.min === undefined ? INT64_MIN : BigInt(Math.ceil(spec.min)),
        to: spec.max === undefined ? INT64_MAX : BigInt(Math.floor(spec.max)),
      };
    }
    return { kind: 'double', from: spec.min ?? -Number.MAX_VALUE, to: spec.max ?? Number.MAX_VALUE };
  }
}

/**
 * A params-file value as a parameter, typed as rcl types it: the YAML is parsed with integers as
 * BigInt, so a BigInt is an INTEGER and a number a DOUBLE (`60.0`).
 */
export function rosParameterFromValue(name: string, value: unknown): RosParameter {
  if (typeof value === 'bigint') return { name, type: ParameterType.INTEGER, value };
  if (typeof value === 'number') return { name, type: ParameterType.DOUBLE, value };
  if (typeof value === 'boolean') return { name, type: ParameterType.BOOL, value };
  if (typeof value === 'string') return { name, type: ParameterType.STRING, value };
  if (Array.isArray(value)) {
    if (value.every((item) => typeof item === 'string')) return { name, type: ParameterType.STRING_ARRAY, value };
    if (value.every((item) => typeof item === 'boolean')) return { name, type: ParameterType.BOOL_ARRAY, value };
    if (value.every((item) => typeof item === 'bigint')) return { name, type: ParameterType.INTEGER_ARRAY, value };
    if (value.every((item) => typeof item === 'number' || typeof item === 'bigint'))
      return { name, type: ParameterType.DOUBLE_ARRAY, value: value.map(Number) };
  }
  return { name, type: ParameterType.NOT_SET, value: undefined };
}
