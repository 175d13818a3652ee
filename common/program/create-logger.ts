import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { PrettyOptions, PrettyStream } from 'pino-pretty';
import type { OptionSpecs } from '../config/option-spec.js';

const require = createRequire(import.meta.url);

export interface LoggerOptions {
  /** The program's name, on every line. */
  name: string;
  level: string;
  /**
   * The option specs of what runs in this process. Every option marked `secret` (a token, a
   * key) is redacted wherever a log line carries it, at the top level or one object down: a
   * second guard behind never logging them at all.
   */
  specs?: readonly OptionSpecs[];
  /** A file descriptor (1 stdout, 2 stderr) or a stream. Default: stdout. */
  destination?: number | NodeJS.WritableStream;
  /** Write each line before going on, so a program that exits at once loses none (file descriptors only). */
  sync?: boolean;
  /** Human-readable lines through pino-pretty, to the file descriptor (for a terminal). */
  pretty?: boolean;
  /** Fields on every line instead of pino's (pid and hostname). */
  base?: Record<string, unknown>;
  /** Messages not to log (a command that prints these events itself says them once). */
  skip?: (message: string) => boolean;
}

/** Credentials that travel outside the options: the bearer token in HTTP headers. */
const CREDENTIAL_PATHS = ['authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization'];

/** The redact paths for these option specs: each secret option's key, top level and one object down. */
export function redactPaths(specs: readonly OptionSpecs[]): string[] {
  const secrets = new Set<string>();
  for (const set of specs) for (const [key, spec] of Object.entries(set)) if (spec.secret) secrets.add(key);
  return [...CREDENTIAL_PATHS, ...[...secrets].sort().flatMap((key) => [key, `*.${key}`])];
}

/**
 * The one pino set-up of both programs and the library: a name, a level, redaction derived from
 * the option specs, and a destination. pino-pretty is loaded only when asked for (a few MiB of
 * RSS a daemon does not need), and runs in-process, so no worker thread outlives a fast exit.
 */
export function createLogger(options: LoggerOptions): Logger {
  const { destination = 1, sync } = options;
  const settings = {
    name: options.name,
    level: options.level,
    redact: { paths: redactPaths(options.specs ?? []), censor: '[redacted]' },
    ...(options.base ? { base: options.base } : {}),
    ...(options.skip ? { hooks: { logMethod: skipping(options.skip) } } : {}),
  };
  if (options.pretty) {
    const pretty = require('pino-pretty') as (options: PrettyOptions) => PrettyStream;
    return pino(
      settings,
      pretty({
        destination,
        colorize: true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        sync: sync ?? false,
        // A stream (the CLI's live progress output, which keeps its bars below the log lines) is written to as is.
        ...(typeof destination === 'number' ? {} : { colorize: (destination as { isTTY?: boolean }).isTTY !== false }),
      }),
    );
  }
  const stream =
    typeof destination === 'number'
      ? pino.destination({ dest: destination, ...(sync === undefined ? {} : { sync }) })
      : destination;
  return pino(settings, stream);
}

/** A pino logMethod hook that drops the lines whose message `skip` names. */
function skipping(skip: (message: string) => boolean) {
  return function logMethod(this: Logger, args: unknown[], method: (...args: unknown[]) => void): void {
    const message = typeof args[0] === 'string' ? args[0] : args[1];
    if (typeof message === 'string' && skip(message)) return;
    method.apply(this, args);
  };
}
