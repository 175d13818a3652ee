import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths never logged: tokens travel in the authorization header, and a config may hold them. */
export const REDACTED_PATHS = ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', 'tokens', '*.token', '*.tokens'];

/**
 * The server's pino logger: JSON lines on stdout (one per event, as the seed's log lines were),
 * with secrets redacted.
 */
export function createLogger(level: string, destination: NodeJS.WritableStream | number = 1, options: { sync?: boolean } = {}): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: options.sync ?? false }) : destination;
  return pino({ name: 'ros2-upload-server', level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { pid: process.pid } }, stream);
}
