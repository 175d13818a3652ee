import type { Logger } from 'pino';
import type { OptionSpecs } from '../../common/config/option-spec.js';
import { createLogger as createProgramLogger } from '../../common/program/create-logger.js';

export type { Logger };

/**
 * The server's pino logger (the shared factory, common/program/create-logger.ts): JSON lines on
 * stdout (one per event, as the Python dashboard's log lines were), with the authorization header
 * and every secret option of `specs` (the server's: tokens) redacted.
 */
export function createLogger(
  level: string,
  specs: readonly OptionSpecs[],
  destination: NodeJS.WritableStream | number = 1,
  options: { sync?: boolean; pretty?: boolean } = {},
): Logger {
  return createProgramLogger({
    name: 'ros2-upload-server',
    level,
    specs,
    destination,
    sync: options.sync ?? false,
    pretty: options.pretty ?? false,
    base: { pid: process.pid },
  });
}
