import type { Logger } from 'pino';
import { UploadError } from '../../common/errors/upload-error.js';
import type { AgentController } from '../app/agent-controller.js';
import type { AgentConfig } from '../app/agent-options.js';
import { checkStateDir, checkWatchDir } from '../app/check-dirs.js';
import { UploadAgent } from '../app/upload-agent.js';
import path from 'node:path';
import { startEmbeddedServer, type UploadServer } from './embedded-server.js';
import { IN_FLIGHT_SECONDS } from './shutdown.js';

/** The agent as the program runs it: the UploadAgent, plus the bundled server when no URL was given. */
export interface ProgramAgent {
  agent: UploadAgent;
  server: UploadServer | undefined;
  /** The settings in force (uploadUrl filled in with the bundled server's address). */
  config: AgentConfig;
  /** The AgentController the CLI and the ROS node drive; stop() also closes the bundled server. */
  controller: AgentController;
}

/**
 * Starts the bundled server when `config.uploadUrl` is unset, then the agent on it. A failure
 * closes whatever was started and rethrows (the CLI turns it into one line and an exit code).
 */
export async function startProgramAgent(
  config: AgentConfig,
  logger: Logger,
  requireWatchDir = false,
): Promise<ProgramAgent> {
  // Bad folders are reported before anything starts.
  if (requireWatchDir && !config.watchDir) {
    throw new UploadError(
      'USAGE',
      'watch needs a folder: watch <dir>, --watch-dir, UPLOAD_AGENT_WATCH_DIR or the ROS parameter watch_dir',
    );
  }
  checkStateDir(path.resolve(config.stateDir));
  if (config.watchDir) checkWatchDir(config.watchDir, config.createWatchDir);
  const server = config.uploadUrl === undefined ? await startEmbeddedServer(config, logger) : undefined;
  const settings: AgentConfig = { ...config, uploadUrl: config.uploadUrl ?? server?.url };
  const agent = new UploadAgent({ config: settings, logger, ...(server ? { skipDirs: [server.storageRoot] } : {}) });
  try {
    await agent.start();
  } catch (error) {
    await server?.close();
    throw error;
  }
  if (server)
    logger.info(
      { url: server.url, uploadDir: server.storageRoot },
      `no --server given: uploading to the bundled server, which stores files in ${server.storageRoot}`,
    );
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // The stop after the drain must fit in ros2 launch's 5 s between SIGTERM and SIGKILL:
      // in-flight chunks get a few seconds at most.
      if (agent.engine.options.stopTimeout > IN_FLIGHT_SECONDS)
        agent.engine.setOption('stopTimeout', IN_FLIGHT_SECONDS);
      try {
        await agent.stop();
      } finally {
        await server?.close();
      }
    })());
  const controller: AgentController = {
    status: () => agent.status(),
    pause: () => agent.pause(),
    resume: () => agent.resume(),
    enqueue: (filePath, options) => agent.enqueue(filePath, options),
    retryFailed: () => agent.retryFailed(),
    setOption: (key, value) => agent.setOption(key, value),
    markClosed: (filePath) => agent.markClosed(filePath),
    onChange: (listener) => agent.onChange(listener),
    drain: (options) => agent.drain(options),
    stop,
  };
  return { agent, server, config: settings, controller };
}
