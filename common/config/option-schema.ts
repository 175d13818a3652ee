import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { OptionSpec, OptionSpecs, ConfigOf } from './option-spec.js';
import { parseDuration, parseSize, formatDuration, formatSize } from './units.js';

/**
 * The zod validator of one option. Every validator accepts the option's own type and also the
 * string form it has in an environment variable, on the command line or in a ROS string
 * parameter; numeric ones accept BigInt, because rclnodejs returns integer parameters as BigInt.
 */
export function optionSchema(spec: OptionSpec): z.ZodType {
  switch (spec.kind) {
    case 'size':
      return numeric(spec, (text) => parseSize(text), 'a size such as 8MiB, 500k or 1048576', true);
    case 'duration':
      return numeric(spec, (text) => parseDuration(text), 'a duration such as 30s, 5m, 500ms or 2.5 (seconds)', false);
    case 'integer':
      return numeric(spec, (text) => (/^\s*-?\d+\s*$/.test(text) ? Number(text) : undefined), 'an integer', true);
    case 'number':
      return numeric(
        spec,
        (text) => (/^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : undefined),
        'a number',
        false,
      );
    case 'boolean':
      return z.union([z.boolean(), z.string()]).transform((value, ctx) => {
        if (typeof value === 'boolean') return value;
        const lower = value.trim().toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(lower)) return true;
        if (['false', '0', 'no', 'off'].includes(lower)) return false;
        ctx.addIssue({ code: 'custom', message: 'expected true or false' });
        return z.NEVER;
      });
    case 'string':
      return z.string().transform((value, ctx) => {
        if (value === '') return undefined;
        if (spec.format === 'path') return expandHome(value);
        if (spec.format === 'url') {
          let url: URL;
          try {
            url = new URL(value);
          } catch {
            ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
            return z.NEVER;
          }
          if (url.protocol !== 'http:' && url.protocol !== 'https:') {
            ctx.addIssue({ code: 'custom', message: `expected an http:// or https:// URL, not ${url.protocol}` });
            return z.NEVER;
          }
        }
        return value;
      });
    case 'enum':
      return z
        .string()
        .refine((value) => spec.values.includes(value), { message: `expected one of ${spec.values.join(', ')}` });
    case 'list':
      return z.union([z.array(z.string()), z.string()]).transform((value) =>
        typeof value === 'string'
          ? value
              .split(',')
              .map((item) => item.trim())
              .filter(Boolean)
          : value,
      );
  }
}

function numeric(
  spec: Extract<OptionSpec, { default: number }>,
  parseText: (text: string) => number | undefined,
  expected: string,
  integer: boolean,
): z.ZodType {
  const show = (n: number): string =>
    spec.kind === 'size' ? formatSize(n) : spec.kind === 'duration' ? formatDuration(n) : String(n);
  return z.union([z.number(), z.bigint(), z.string()]).transform((value, ctx) => {
    const number = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : parseText(value);
    if (number === undefined || !Number.isFinite(number)) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
      return z.NEVER;
    }
    if (integer && !Number.isInteger(number)) {
      ctx.addIssue({ code: 'custom', message: `expected a whole number` });
      return z.NEVER;
    }
    if (spec.min !== undefined && number < spec.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${show(spec.min)}` });
      return z.NEVER;
    }
    if (spec.max !== undefined && number > spec.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${show(spec.max)}` });
      return z.NEVER;
    }
    return number;
  });
}

export function expandHome(value: string): string {
  if (value === '~') return os.homedir();
  if (value.startsWith('~/')) return path.join(os.homedir(), value.slice(2));
  return value;
}

/** The default value of each option, as its validated type. */
export function defaultsOf<S extends OptionSpecs>(specs: S): ConfigOf<S> {
  const result: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const value = 'default' in spec ? spec.default : undefined;
    result[key] = Array.isArray(value)
      ? [...value]
      : spec.kind === 'string' && typeof value === 'string' && spec.format === 'path'
        ? expandHome(value)
        : value;
  }
  return result as ConfigOf<S>;
}

/** A zod object of all the options (each optional on input, defaulted on output). */
export function objectSchema(specs: OptionSpecs): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const base = optionSchema(spec);
    shape[key] =
      'default' in spec && spec.default !== undefined
        ? base.optional().default(spec.default as never)
        : base.optional();
  }
  return z.object(shape).strict();
}
