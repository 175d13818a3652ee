import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AgentController, AgentStatus } from './agent-controller.js';

/** The control socket's file in the state directory. */
export const CONTROL_SOCKET = 'control.sock';

/**
 * What the program says about itself: shown by `status`, also written to the state directory for
 * when it is not running.
 */
export interface RunInfo {
  command: 'watch' | 'upload';
  pid: number;
  version: string;
  startedAt: string;
  stateDir: string;
  watchDir: string | undefined;
  /** The server in use; `embedded` when it is the bundled server started in the agent's own process. */
  server: { url: string; embedded: boolean; storage: string | undefined };
}

export type ControlCommand = 'status' | 'retry' | 'pause' | 'resume';

export type ControlAnswer =
  | { ok: true; status: AgentStatus; run: RunInfo; retried?: number }
  | { ok: false; error: string };

/** The most a request may be (it is a short JSON line). */
const MAX_REQUEST = 4096;

/**
 * The local control channel of a running agent: a Unix socket in the state directory that
 * `ros2-upload-agent status|retry|pause|resume` talk to, as the ROS services do. Only the
 * agent's own user (and root) can use it: the socket is created with mode 0600 (umask set
 * around bind, then chmod), in a folder the agent owns. It offers only what the ROS services
 * offer (status, retry failed uploads, pause, resume): nothing reads or names other files.
 * One JSON line per request and per answer.
 */
export class ControlServer {
  readonly #server: net.Server;
  readonly file: string;

  private constructor(server: net.Server, file: string) {
    this.#server = server;
    this.file = file;
  }

  /**
   * Listens on `<stateDir>/control.sock`. The caller holds the state directory's lock, so a
   * socket file found there is a dead agent's: it is replaced. Resolves undefined (after a
   * warning) when the socket cannot be made, e.g. a state directory path longer than a socket
   * path may be: the agent runs on, and `status` reads the journal instead.
   */
  static async start(
    stateDir: string,
    controller: AgentController,
    run: () => RunInfo,
    logger: Logger,
  ): Promise<ControlServer | undefined> {
    const file = path.join(stateDir, CONTROL_SOCKET);
    try {
      if (lstatSync(file, { throwIfNoEntry: false })?.isSocket()) unlinkSync(file);
    } catch {
      // listen reports it
    }
    const server = net.createServer((socket) => serve(socket, controller, run, logger));
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(file, () => {
          server.off('error', reject);
          resolve();
        });
      });
      chmodSync(file, 0o600);
    } catch (error) {
      server.close();
      logger.warn(
        { err: error, socket: file },
        'no control socket (status, retry, pause and resume from the command line will not reach this agent)',
      );
      return undefined;
    } finally {
      process.umask(previous);
    }
    server.unref();
    return new ControlServer(server, file);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

function serve(socket: net.Socket, controller: AgentController, run: () => RunInfo, logger: Logger): void {
  let text = '';
  socket.setEncoding('utf8');
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('data', (piece: string) => {
    text += piece;
    if (text.length > MAX_REQUEST) {
      socket.destroy();
      return;
    }
    const end = text.indexOf('\n');
    if (end < 0) return;
    const answer = handle(text.slice(0, end), controller, run, logger);
    socket.end(`${JSON.stringify(answer)}\n`);
  });
}

function handle(line: string, controller: AgentController, run: () => RunInfo, logger: Logger): ControlAnswer {
  let command: unknown;
  try {
    command = (JSON.parse(line) as { command?: unknown }).command;
  } catch {
    return { ok: false, error: 'not a JSON request' };
  }
  let retried: number | undefined;
  switch (command) {
    case 'status':
      break;
    case 'retry':
      retried = controller.retryFailed();
      logger.info({ retried }, `retry asked for on the control socket: ${retried} failed upload(s) queued again`);
      break;
    case 'pause':
      controller.pause();
      logger.info('paused from the control socket: no new chunks until resume');
      break;
    case 'resume':
      controller.resume();
      logger.info('resumed from the control socket');
      break;
    default:
      return { ok: false, error: `unknown command ${JSON.stringify(command)}` };
  }
  return { ok: true, status: controller.status(), run: run(), ...(retried === undefined ? {} : { retried }) };
}

/**
 * Asks the agent running on `stateDir`. Resolves undefined when none listens there (no socket,
 * or a dead agent's); rejects when one answers with an error or garbles its answer.
 */
export function askAgent(
  stateDir: string,
  command: ControlCommand,
  timeoutMs = 10_000,
): Promise<ControlAnswer | undefined> {
  const file = path.join(stateDir, CONTROL_SOCKET);
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    let text = '';
    let connected = false;
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`the agent on ${stateDir} did not answer within ${timeoutMs / 1000} s`));
    });
    socket.on('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify({ command })}\n`);
    });
    socket.on('data', (piece: string) => {
      text += piece;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(error);
    });
    socket.on('end', () => {
      try {
        resolve(JSON.parse(text) as ControlAnswer);
      } catch {
        reject(new Error(`the agent on ${stateDir} sent an answer that is not JSON`));
      }
    });
  });
}
