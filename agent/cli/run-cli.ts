import type { Logger } from 'pino';
import { UploadError } from '../../common/errors/upload-error.js';
import { createLogger } from '../../common/program/create-logger.js';
import { packageVersion } from '../../common/program/package-version.js';
import { agentOptionSpecs } from '../app/agent-options.js';
import { exitCodeOf, exitCodes } from './exit-codes.js';
import { helpText } from './help-text.js';
import { parseInvocation, type Invocation } from './invocation.js';

export interface CliIo {
  stdout: NodeJS.WriteStream | NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/**
 * Runs one `ros2-upload-agent` command line (argv without node and the script) and returns
 * the exit code. A problem ends it with ONE line on stderr naming it, and the code from
 * exit-codes.ts.
 */
export async function runCli(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  let logger: Logger | undefined;
  try {
    const invocation = parseInvocation(argv, io.env);
    switch (invocation.command) {
      case 'help':
        io.stdout.write(helpText());
        return exitCodes.OK;
      case 'version':
        io.stdout.write(`${packageVersion()}\n`);
        return exitCodes.OK;
      // Each command's code is loaded when it runs: `upload` and `status` never load the ROS layer.
      case 'status': {
        const { statusCommand } = await import('./status-command.js');
        return statusCommand(invocation, io.stdout);
      }
      case 'upload': {
        // Progress lines carry the news; the log shows warnings unless asked for more.
        const level = ['trace', 'debug'].includes(invocation.config.logLevel)
          ? invocation.config.logLevel
          : invocation.config.logLevel === 'info'
            ? 'warn'
            : invocation.config.logLevel;
        logger = programLogger(level);
        warnTokenFlag(invocation, logger);
        const { uploadCommand } = await import('./upload-command.js');
        return await uploadCommand(invocation, logger, io.stdout);
      }
      case 'watch': {
        logger = programLogger(invocation.config.logLevel);
        warnTokenFlag(invocation, logger);
        const { watchCommand } = await import('./watch-command.js');
        return await watchCommand(invocation, logger);
      }
    }
  } catch (error) {
    io.stderr.write(`ros2-upload-agent: ${oneLine(error)}\n`);
    if (!(error instanceof UploadError)) logger?.error({ err: error }, 'unexpected error');
    return exitCodeOf(error);
  }
}

/**
 * The program's log: to stderr (stdout carries command output such as `status`), written
 * synchronously (a finished command exits at once), human-readable on a terminal and JSON lines
 * otherwise (systemd, ros2 launch, log shippers).
 */
function programLogger(level: string): Logger {
  return createLogger({
    name: 'ros2-upload-agent',
    level,
    specs: [agentOptionSpecs],
    destination: 2,
    sync: true,
    pretty: process.stderr.isTTY === true,
  });
}

/** A token given as a flag works, but every local user can read it in /proc/<pid>/cmdline (and `ps`). */
function warnTokenFlag(invocation: Invocation, logger: Logger): void {
  if (!invocation.tokenOnCommandLine) return;
  logger.warn(
    `--token is visible to every user of this machine in /proc/${process.pid}/cmdline (ps shows it): ` +
      'put the token in a file only you can read (chmod 600) and pass --token-file FILE, or set UPLOAD_AGENT_TOKEN',
  );
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
