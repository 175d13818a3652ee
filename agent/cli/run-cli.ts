import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ttyProgress, type ProgressOutput } from './progress-output.js';
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
        io.stdout.write(helpText(invocation.helpFor));
        return exitCodes.OK;
      case 'version':
        io.stdout.write(`${packageVersion()}\n`);
        return exitCodes.OK;
      // Each command's code is loaded when it runs: `upload` and `status` never load the ROS layer.
      case 'status': {
        warnNow(invocation, io);
        const { statusCommand } = await import('./status-command.js');
        return await statusCommand(invocation, io.stdout);
      }
      case 'retry':
      case 'pause':
      case 'resume': {
        warnNow(invocation, io);
        const { controlCommand } = await import('./status-command.js');
        return await controlCommand(invocation, invocation.command, io.stdout);
      }
      case 'upload': {
        // The command's own lines carry the news (every file, its failure, the network going and
        // coming back), each once: the log adds warnings about anything else (a full or damaged
        // state disk, TLS) unless another level is asked for, and never repeats those lines.
        const level = invocation.config.logLevel === 'info' ? 'warn' : invocation.config.logLevel;
        logger = programLogger(level, undefined, (message) => SAID_BY_UPLOAD.has(message));
        warnNow(invocation, io);
        const { uploadCommand } = await import('./upload-command.js');
        return await uploadCommand(invocation, logger, io.stdout);
      }
      case 'watch': {
        // On a terminal: live progress bars, with the log lines written above them.
        const progress = process.stderr.isTTY === true ? ttyProgress(process.stderr) : undefined;
        logger = programLogger(invocation.config.logLevel, progress && lineStream(progress));
        for (const note of settingWarnings(invocation)) logger.warn(note);
        const { watchCommand } = await import('./watch-command.js');
        return await watchCommand(invocation, logger, { ...(progress ? { progress } : {}) });
      }
    }
  } catch (error) {
    io.stderr.write(`ros2-upload-agent: ${oneLine(error)}\n`);
    if (!(error instanceof UploadError)) logger?.error({ err: error }, 'unexpected error');
    return exitCodeOf(error);
  }
}

/** The engine's log lines that `upload` prints itself, as its own lines on stdout. */
const SAID_BY_UPLOAD = new Set(['upload failed', 'server unreachable: offline; probing it with backoff']);

/**
 * The program's log: to stderr (stdout carries command output such as `status`), written
 * synchronously (a finished command exits at once), human-readable on a terminal and JSON lines
 * otherwise (systemd, ros2 launch, log shippers).
 */
function programLogger(level: string, through?: NodeJS.WritableStream, skip?: (message: string) => boolean): Logger {
  return createLogger({
    ...(skip ? { skip } : {}),
    name: 'ros2-upload-agent',
    level,
    specs: [agentOptionSpecs],
    destination: through ?? 2,
    sync: true,
    pretty: process.stderr.isTTY === true,
  });
}

/**
 * Warnings about the settings: an old name was used, or the token came as a flag (it works, but
 * every local user can read it in /proc/<pid>/cmdline and `ps`).
 */
function settingWarnings(invocation: Invocation): string[] {
  if (!invocation.tokenOnCommandLine) return invocation.notes;
  return [
    ...invocation.notes,
    `--token is visible to every user of this machine in /proc/${process.pid}/cmdline (ps shows it): ` +
      'put the token in a file only you can read (chmod 600) and pass --token-file FILE, or set UPLOAD_AGENT_TOKEN',
  ];
}

/** The setting warnings straight to stderr, for commands whose log shows only fatal errors. */
function warnNow(invocation: Invocation, io: CliIo): void {
  for (const note of settingWarnings(invocation)) io.stderr.write(`ros2-upload-agent: warning: ${note}\n`);
}

/** A stream whose lines go to the progress output's line(), so they appear above its bars. */
function lineStream(progress: ProgressOutput): NodeJS.WritableStream {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) progress.line(line);
      done();
    },
  });
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
