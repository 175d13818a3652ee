import { formatOptionsHelp, parseCommandLine, readConfigFile } from '../../common/config/index.js';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { createLogger } from '../logging/logger.js';
import { VERSION } from '../routes/health.js';
import { serverOptions } from '../config/server-options.js';
import { createUploadServer } from '../upload-server.js';
import { exitCodeOf, exitCodes } from './exit-codes.js';
import { applyServerV8Flags } from './v8-flags.js';

// Now, once every module above is loaded, and before anything else (see v8-flags.ts).
applyServerV8Flags();

const USAGE = `Usage: ros2-upload-server [options]

Receives ROS 2 recordings from ros2-upload-agent (native protocol, /v1) and from the legacy
dashboard API's clients (/upload/init, /upload/chunk, /upload/finalize). Every option can also be
set by its UPLOAD_SERVER_* environment variable or in a YAML/JSON config file (--config, keys in
camelCase, kebab-case or snake_case, optionally under "server:"). Precedence: flag > environment >
config file > default. Older variable names (SSL_CERT, SSL_KEY, HOST, PORT, UPLOAD_DIR, ...) are
still accepted: docs/configuration.md lists them.

Options:
  -c, --config <file>                   YAML or JSON config file [env UPLOAD_SERVER_CONFIG]
  -h, --help                            this help
  -V, --version                         print the version
`;

// The AWS SDK warns once per process that its releases from 2027 on need Node 22; the version
// this package pins runs on Node 20, so the warning tells an operator nothing they can act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The environment variable naming a config file, like `--config`. */
const CONFIG_ENV = 'UPLOAD_SERVER_CONFIG';

async function main(argv: string[]): Promise<void> {
  const cli = parseCommandLine(serverOptions, argv, {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
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
  const notes: string[] = [];
  const configFile = typeof cli.extras.config === 'string' ? cli.extras.config : process.env[CONFIG_ENV] || undefined;
  const fromFile = configFile ? readConfigFile(serverOptions, configFile, 'server', notes) : {};
  const fromEnv = serverOptions.fromEnv(process.env, { otherNames: [CONFIG_ENV], notes });
  const config = serverOptions.resolve(fromFile, fromEnv, cli.values);
  // Human-readable lines on a terminal, JSON lines otherwise (systemd, docker, log shippers).
  const logger = createLogger(config.logLevel, [serverOptions.specs], 1, {
    sync: true,
    pretty: process.stdout.isTTY === true,
  });
  for (const note of notes) logger.warn({ event: 'setting_name' }, note);
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

/** The `ros2-upload-server` program (main.ts runs it): exits with a message and its exit code on failure. */
export async function runServerProgram(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } catch (error) {
    const message = isUploadError(error)
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
    process.stderr.write(`ros2-upload-server: ${message}\n`);
    process.exit(exitCodeOf(error));
  }
}
