import type { Logger } from 'pino';
import { createLogger as createProgramLogger } from '../../common/program/create-logger.js';
import { serverOptionSpecs } from '../server-options.js';

export type { Logger };

/**
 * The server's pino logger (the shared factory, common/program/create-logger.ts): JSON lines on
 * stdout (one per event, as the Python dashboard's log lines were), with the authorization header
 * and the secret options (tokens) redacted.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number = 1, options: { sync?: boolean } = {}): Logger {
  return createProgramLogger({ name: 'ros2-upload-server', level, specs: [serverOptionSpecs], destination, sync: options.sync ?? false, base: { pid: process.pid } });
}
