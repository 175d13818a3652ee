import type { Logger } from 'pino';
import { agentOptions } from '../app/agent-options.js';
import { loadRos, rosModeFromFlag, startRosNode, type StartRosNodeOptions } from '../ros/index.js';
import type { Invocation } from './invocation.js';
import { startProgramAgent } from './program-agent.js';
import type { ProgressOutput } from './progress-output.js';
import { onStopSignal } from './shutdown.js';
import { exitCodes } from './exit-codes.js';

/** Seams for tests: the ROS probe and extra options of the ROS node (signals, exit, a fake binding). */
export interface WatchDependencies {
  loadRos?: typeof loadRos;
  rosNode?: Partial<Pick<StartRosNodeOptions, 'signals' | 'exit' | 'handleSignals'>>;
  /** Called once the node runs, with its handle (tests stop it through it). */
  onRosNode?: (handle: Awaited<ReturnType<typeof startRosNode>>) => void;
  /** Live progress (a terminal): every upload's bar, instead of periodic progress lines in the log. */
  progress?: ProgressOutput;
}

/**
 * `watch <dir>`: the daemon. As a ROS 2 node when ROS is usable (or `--ros`), with settings
 * from ROS parameters merged last (so `-p watch_dir:=...` and launch-file parameters configure
 * the agent before it starts); standalone otherwise. Resolves with the exit code once stopped
 * by SIGINT or SIGTERM.
 */
export async function watchCommand(
  invocation: Invocation,
  logger: Logger,
  deps: WatchDependencies = {},
): Promise<number> {
  const ros = await (deps.loadRos ?? loadRos)(rosModeFromFlag(invocation.ros));
  if (ros.available) {
    const handle = await startRosNode({
      binding: ros.binding,
      argv: [process.argv[0] ?? 'node', process.argv[1] ?? 'ros2-upload-agent', ...invocation.argv],
      logger,
      ...deps.rosNode,
      agent: async (rosSettings) => {
        const config = agentOptions.resolve(invocation.config, rosSettings as Partial<typeof invocation.config>);
        const started = await startProgramAgent(config, logger, {
          command: 'watch',
          requireWatchDir: true,
          progressLines: deps.progress === undefined,
        });
        const progress = deps.progress;
        if (progress) started.agent.onChange((upload) => upload && progress.update(upload));
        return { agent: started.controller, config: started.config };
      },
    });
    deps.onRosNode?.(handle);
    logger.info({ node: handle.fullyQualifiedName }, 'running as a ROS 2 node');
    await handle.closed;
    return exitCodes.OK;
  }
  logger.debug({ reason: ros.reason }, 'running without ROS');
  // SIGINT/SIGTERM are handled from before the agent starts (registered before any await): a
  // signal that arrives while it starts, even right after it logged that it is watching, stops
  // it gracefully once it has started, instead of killing it.
  const startup = startProgramAgent(invocation.config, logger, {
    command: 'watch',
    requireWatchDir: true,
    progressLines: deps.progress === undefined,
  });
  const stopped = onStopSignal(async () => {
    const started = await startup.catch(() => undefined);
    deps.progress?.close();
    await started?.controller.stop();
  }, logger);
  const started = await startup;
  const progress = deps.progress;
  if (progress) started.agent.onChange((upload) => upload && progress.update(upload));
  return stopped;
}
