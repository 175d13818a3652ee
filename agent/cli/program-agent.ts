import type { Logger } from 'pino';
import { UploadError } from '../../common/errors/upload-error.js';
import type { AgentController } from '../app/agent-controller.js';
import type { AgentConfig } from '../app/agent-options.js';
import { checkStateDir, checkWatchDir } from '../app/check-dirs.js';
import { ActivityReport } from '../app/activity-report.js';
import { ControlServer, type RunInfo } from '../app/control-socket.js';
import { UploadAgent } from '../app/upload-agent.js';
import { type MetricsEndpoint, parseListen, serveMetrics } from '../../common/program/metrics-endpoint.js';
import path from 'node:path';
import { packageVersion } from '../../common/program/package-version.js';
import { startEmbeddedServer, type UploadServer } from './embedded-server.js';
import { recordRun } from './run-record.js';
import { IN_FLIGHT_SECONDS } from './shutdown.js';

/** The agent as the program runs it: the UploadAgent, plus the bundled server when no URL was given. */
export interface ProgramAgent {
  agent: UploadAgent;
  server: UploadServer | undefined;
  /** The settings in force (serverUrl filled in with the bundled server's address). */
  config: AgentConfig;
  /** The AgentController the CLI and the ROS node drive; stop() also closes the bundled server. */
  controller: AgentController;
  /** What `status` shows about this run. */
  run: RunInfo;
}

/** How the program runs the agent. */
export interface ProgramAgentOptions {
  command: 'watch' | 'upload';
  /** A watch folder is required (watch). */
  requireWatchDir?: boolean;
  /** The state directory the user named (upload keeps its journal in a subfolder of it). */
  userStateDir?: string;
  /** Periodic progress lines in the log (off when the CLI shows live progress on a terminal). */
  progressLines?: boolean;
}

/**
 * Starts the bundled server when `config.serverUrl` is unset, then the agent on it. A failure
 * closes whatever was started and rethrows (the CLI turns it into one line and an exit code).
 */
export async function startProgramAgent(
  config: AgentConfig,
  logger: Logger,
  options: ProgramAgentOptions,
): Promise<ProgramAgent> {
  // Bad folders and settings are reported before anything starts.
  if (options.requireWatchDir && !config.watchDir) {
    throw new UploadError(
      'USAGE',
      'watch needs a folder: watch <dir>, --watch-dir, UPLOAD_AGENT_WATCH_DIR or the ROS parameter watch_dir',
    );
  }
  if (config.serverUrl === undefined && config.afterUpload !== 'keep' && config.watchDir && !config.allowLocalDelete) {
    throw new UploadError(
      'CONFIG_INVALID',
      `afterUpload ${config.afterUpload} with no server URL would ${config.afterUpload} the recordings once ` +
        `the bundled server on this machine holds them (in ${path.resolve(config.embeddedUploadDir)}): ` +
        'give the real server with --server-url (UPLOAD_AGENT_SERVER_URL), or pass --allow-local-delete ' +
        'if this is what you want',
      { details: { option: 'afterUpload' } },
    );
  }
  checkStateDir(path.resolve(config.stateDir));
  if (config.watchDir) checkWatchDir(config.watchDir, config.createWatchDir);
  const metricsAddress =
    config.metricsListen === undefined
      ? undefined
      : parseListen(config.metricsListen, 'metricsListen (--metrics-listen, UPLOAD_AGENT_METRICS_LISTEN)');
  const server = config.serverUrl === undefined ? await startEmbeddedServer(config, logger) : undefined;
  const settings: AgentConfig = { ...config, serverUrl: config.serverUrl ?? server?.url };
  const agent = new UploadAgent({ config: settings, logger, ...(server ? { skipDirs: [server.storageRoot] } : {}) });
  try {
    await agent.start();
  } catch (error) {
    await server?.close();
    throw error;
  }
  let metrics: MetricsEndpoint | undefined;
  if (metricsAddress) {
    try {
      // prom-client is loaded only when metrics are served.
      const { AgentMetrics } = await import('../app/agent-metrics.js');
      const collector = new AgentMetrics(agent);
      metrics = await serveMetrics(
        metricsAddress,
        () => collector.text(),
        (error) => logger.error({ err: error }, 'could not collect the metrics'),
      );
      logger.info({ metricsUrl: metrics.url }, `Prometheus metrics at ${metrics.url}`);
    } catch (error) {
      await agent.stop();
      await server?.close();
      throw error;
    }
  }
  if (server) {
    // Loud on every start: a forgotten or misspelt server setting must not look like success.
    logger.warn(
      { url: server.url, uploadDir: server.storageRoot },
      'NO SERVER GIVEN: uploading to the bundled server in this process, which stores every file on THIS ' +
        `machine, in ${server.storageRoot}. For a real server give --server-url https://… ` +
        '(or UPLOAD_AGENT_SERVER_URL, or serverUrl in the config file)',
    );
  }
  const stateDir = path.resolve(config.stateDir);
  const run: RunInfo = {
    command: options.command,
    pid: process.pid,
    version: packageVersion(),
    startedAt: new Date().toISOString(),
    stateDir,
    watchDir: agent.watcher?.root,
    server: server
      ? { url: server.url, embedded: true, storage: server.storageRoot }
      : { url: settings.serverUrl!, embedded: false, storage: undefined },
  };
  try {
    recordRun(run, options.userStateDir ?? stateDir);
  } catch (error) {
    logger.warn({ err: error }, 'could not write the run record into the state directory');
  }
  const report = new ActivityReport(agent, logger, options.progressLines === false ? 0 : config.progressLogInterval);
  let stopping: Promise<void> | undefined;
  let control: ControlServer | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // The stop after the drain must fit in ros2 launch's 5 s between SIGTERM and SIGKILL:
      // in-flight chunks get a few seconds at most.
      if (agent.engine.options.stopTimeout > IN_FLIGHT_SECONDS)
        agent.engine.setOption('stopTimeout', IN_FLIGHT_SECONDS);
      try {
        metrics?.close();
        await control?.close();
        await agent.stop();
        report.stop();
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
  control = await ControlServer.start(stateDir, controller, () => run, logger);
  return { agent, server, config: settings, controller, run };
}
