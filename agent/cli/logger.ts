import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { PrettyOptions, PrettyStream } from 'pino-pretty';

const require = createRequire(import.meta.url);

/**
 * pino to stderr (stdout carries command output such as `status`): human-readable through
 * pino-pretty on a terminal, JSON lines otherwise (systemd, ros2 launch, log shippers). The
 * pretty stream runs in-process, so there is no worker thread to outlive a fast exit. Tokens
 * never reach a log line: the redact list is a second guard behind not logging them at all.
 * pino-pretty is loaded only for a terminal (a few MiB of RSS the daemon does not need).
 */
export function createLogger(level: string, options: { pretty?: boolean } = {}): Logger {
  const usePretty = options.pretty ?? process.stderr.isTTY === true;
  const base = {
    level,
    name: 'ros2-upload-agent',
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'clientKey', '*.clientKey'], censor: '[redacted]' },
  };
  if (usePretty) {
    const pretty = require('pino-pretty') as (options: PrettyOptions) => PrettyStream;
    return pino(base, pretty({ destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true }));
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}
