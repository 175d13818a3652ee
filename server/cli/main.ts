#!/usr/bin/env node
import { formatOptionsHelp, parseCommandLine, readConfigFile } from '../../common/config/index.js';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { createLogger } from '../logging/logger.js';
import { VERSION } from '../routes/health.js';
import { serverOptions } from '../config/server-options.js';
import { createUploadServer } from '../upload-server.js';
import { exitCodeOf, exitCodes } from './exit-codes.js';

const USAGE = `Usage: ros2-upload-server [options]

Receives ROS 2 recordings from ros2-upload-agent (native protocol, /v1) and from the legacy dashboard's
clients (/upload/init, /upload/chunk, /upload/finalize). Every option can also be set by its
environment variable or in a YAML/JSON config file (--config, keys in camelCase, kebab-case or
snake_case, optionally under "server:"). Precedence: flag > environment > config file > default.

Options:
  -c, --config <file>                   YAML or JSON config file
  -h, --help                            this help
      --version                         print the version
`;

// The AWS SDK warns once per process that its releases from 2027 on need Node 22; the version
// this package pins runs on Node 20, so the warning tells an operator nothing they can act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(argv: string[]): Promise<void> {
  const cli = parseCommandLine(serverOptions, argv, {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  });
  if (cli.extras.help) {
    process.stdout.write(`${USAGE}${formatOptionsHelp(serverOptions)}\n`);
    return;
  }
  if (cli.extras.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (cli.positionals.length > 0)
    throw new UploadError('USAGE', `Unexpected argument ${JSON.stringify(cli.positionals[0])} (see --help)`);
  const fromFile =
    typeof cli.extras.config === 'string' ? readConfigFile(serverOptions, cli.extras.config, 'server') : {};
  const config = serverOptions.resolve(fromFile, serverOptions.fromEnv(process.env), cli.values);
  const logger = createLogger(config.logLevel, [serverOptions.specs], 1, { sync: true });
  // Signals are handled from before the server listens: a SIGTERM right after the "listening"
  // line (a supervisor, a test) must close cleanly, not kill the process by default.
  let server: Awaited<ReturnType<typeof createUploadServer>> | undefined;
  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ event: 'forced_exit', signal }, `Second ${signal}: exiting without waiting`);
      process.exit(exitCodes.INTERRUPTED);
    }
    if (server === undefined) {
      // Nothing was accepted yet, so nothing is in flight.
      logger.info({ event: 'shutdown', signal }, `${signal} received while starting: exiting`);
      process.exit(exitCodes.OK);
    }
    logger.info(
      { event: 'shutdown', signal },
      `${signal} received: closing (up to ${config.shutdownTimeout} s for requests in flight)`,
    );
    server.close().then(
      () => process.exit(exitCodes.OK),
      (error: unknown) => {
        logger.error({ err: error }, 'Closing failed');
        process.exit(exitCodes.INTERNAL);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  server = await createUploadServer({ ...config, logger });
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = isUploadError(error)
    ? error.message
    : error instanceof Error
      ? (error.stack ?? error.message)
      : String(error);
  process.stderr.write(`ros2-upload-server: ${message}\n`);
  process.exit(exitCodeOf(error));
});
