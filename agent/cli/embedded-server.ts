import path from 'node:path';
import type { Logger } from 'pino';
import type { UploadServer } from '../../server/index.js';
import type { AgentConfig } from '../app/agent-options.js';

export type { UploadServer };

/**
 * The bundled server, started in this process when no server URL was given: on 127.0.0.1
 * only (so it runs open, without tokens), rate limits off (it serves this one agent), storing
 * under embeddedUploadDir (`./uploads`: completed/anonymous/<bag>/<file>).
 *
 * The server's code (express and the rest) is imported only here, when it is started: an agent
 * that uploads to a remote server (`--server`) never loads it (about 12 MiB of RSS saved).
 */
export async function startEmbeddedServer(config: AgentConfig, logger: Logger): Promise<UploadServer> {
  const { createUploadServer } = await import('../../server/index.js');
  const server = await createUploadServer({
    host: '127.0.0.1',
    port: config.embeddedPort,
    uploadDir: path.resolve(config.embeddedUploadDir),
    rateLimit: false,
    // The agent reports every upload; the server's own lines only at debug level.
    logger: logger.child(
      { component: 'server' },
      { level: ['trace', 'debug'].includes(logger.level) ? logger.level : 'warn' },
    ),
  });
  return server;
}
