import type { Logger } from 'pino';
import type { OptionSet, OptionSpecs } from '../../common/config/index.js';
import { UploadError } from '../../common/errors/upload-error.js';
import type { AgentController } from '../app/agent-controller.js';
import { agentOptions } from '../app/agent-options.js';
import { handleStopSignals } from '../app/stop-signals.js';
import { resolveRosSettings, type RosSettings } from './parameter-bridge.js';
import { loadRos } from './ros-probe.js';
import { ParameterSchema } from './ros-parameters.js';
import type { RosBinding, RosNode } from './ros-seam.js';
import { rosNames, UploadAgentNode } from './upload-agent-node.js';

/**
 * After the drain, how long the agent may take to stop before the node goes down anyway.
 * `ros2 launch` sends SIGINT, then SIGTERM after its sigterm_timeout (which cuts the drain short),
 * then SIGKILL 5 s later: the process must be gone by then.
 */
export const STOP_SECONDS = 4;

/** The agent and the settings it runs with (by option key; missing keys are defaults). */
export interface RunningAgent {
  agent: AgentController;
  config: Record<string, unknown>;
}

/**
 * Creates the agent once ROS has said its part: receives the settings given through ROS
 * (`-p`, params files, launch-file parameters; by option key, validated) and returns the started
 * agent with the settings it runs with. Merge them last, so that what the launch file says wins.
 */
export type AgentFactory = (rosSettings: RosSettings) => Promise<RunningAgent>;

export interface StartRosNodeOptions {
  /**
   * The full command line as the process got it (`process.argv`), ROS arguments included:
   * rclnodejs.init applies `--ros-args` (`-p`, `--params-file`, `-r`, `__ns`, `__node`), and the
   * node reads the `--params-file` entries rclnodejs misses. Strip them (stripRosArgs) only for
   * the program's own parsing.
   */
  argv: string[];
  logger: Logger;
  /**
   * Either a factory (preferred: launch-file parameters such as `watch_dir` and `server_url` then
   * configure the agent before it starts), or an agent that already runs, to which ROS-given
   * settings are applied with setOption (a refusal is a startup error).
   */
  agent: AgentFactory | AgentController;
  /** With an AgentController: the settings it runs with (by option key). */
  config?: Record<string, unknown>;
  /** rclnodejs behind the seam; default: loadRos('on'), which throws ROS_UNAVAILABLE when ROS is not usable. */
  binding?: RosBinding;
  /** The options mirrored as parameters; default: the agent's (agent/app/agent-options.ts). */
  optionSet?: OptionSet<OptionSpecs>;
  /** Default `upload_agent`; `-r __node:=...` still renames it. */
  nodeName?: string;
  /**
   * Default true: handle SIGINT and SIGTERM here (rclnodejs's own handler is removed), as
   * agent/app/stop-signals.ts says: the first signal runs shutdown() (drain, stop, node down) and
   * then exit(0) (exit(1) if shutdown failed); a second one cuts the drain short; a third takes
   * ROS down and exits at once with 130/143. Pass false to call shutdown() from the program's
   * own handlers instead.
   */
  handleSignals?: boolean;
  /** Default process.exit. */
  exit?: (code: number) => void;
  /** Where signals come from; default process. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

export interface RosNodeHandle {
  /** The node's fully qualified name (`/ns/upload_agent`). */
  readonly fullyQualifiedName: string;
  readonly agent: AgentController;
  /**
   * Drains the agent (agent.drain(): the node keeps publishing meanwhile; `cut` ends it sooner;
   * `drain: false` skips it), stops it (for at most STOP_SECONDS), then destroys the node and
   * shuts rclnodejs down, exactly once. Later calls return the same promise.
   */
  shutdown(options?: { cut?: AbortSignal; drain?: boolean }): Promise<void>;
  /** Settles when shutdown has finished. */
  readonly closed: Promise<void>;
}

/**
 * Runs the agent as the ROS 2 node `upload_agent`: initialises rclnodejs with argv, creates the
 * node, resolves ROS-given settings (including params-file entries keyed by the node's fully
 * qualified name, which rclnodejs drops), creates or configures the agent, declares every setting
 * as a parameter, starts publishing and serving, and spins.
 *
 * Errors: UploadError ROS_UNAVAILABLE (no usable ROS), USAGE (rclnodejs refused the ROS
 * arguments), CONFIG_INVALID (a bad ROS parameter value, naming it and where it came from); the
 * node and rclnodejs are shut down before the error is thrown.
 */
export async function startRosNode(options: StartRosNodeOptions): Promise<RosNodeHandle> {
  const { logger } = options;
  let binding = options.binding;
  if (!binding) {
    const ros = await loadRos('on');
    if (!ros.available) throw new UploadError('ROS_UNAVAILABLE', ros.reason);
    binding = ros.binding;
  }
  const rcl = binding;
  rcl.removeSignalHandlers();
  try {
    await rcl.init(options.argv);
  } catch (error) {
    throw new UploadError('USAGE', `ROS 2 could not start: ${(error as Error).message} (check the --ros-args)`, {
      cause: error,
    });
  }

  let node: RosNode | undefined;
  let rosIsDown = false;
  const takeRosDown = (): void => {
    if (rosIsDown) return;
    rosIsDown = true;
    try {
      node?.destroy();
    } catch (error) {
      logger.warn({ err: error }, 'destroying the ROS node failed');
    }
    try {
      rcl.shutdown();
    } catch (error) {
      logger.warn({ err: error }, 'rclnodejs shutdown failed');
    }
  };

  let running: RunningAgent | undefined;
  let ownsAgent = false;
  let uploadNode: UploadAgentNode | undefined;
  try {
    try {
      node = rcl.createNode(options.nodeName ?? rosNames.node);
    } catch (error) {
      throw new UploadError(
        'USAGE',
        `The ROS node could not be created: ${(error as Error).message} (check -r __node:= and __ns:=)`,
        { cause: error },
      );
    }
    const schema = new ParameterSchema(options.optionSet ?? (agentOptions as unknown as OptionSet<OptionSpecs>));
    const rosSettings = resolveRosSettings(node, options.argv, schema, logger);
    if (typeof options.agent === 'function') {
      running = await options.agent(rosSettings);
      ownsAgent = true;
    } else {
      running = {
        agent: options.agent,
        config: applySettings(options.agent, { ...options.config }, rosSettings, schema),
      };
    }
    uploadNode = new UploadAgentNode({
      binding: rcl,
      node,
      agent: running.agent,
      schema,
      values: { ...schema.set.defaults(), ...running.config },
      logger,
    });
    uploadNode.start();
  } catch (error) {
    uploadNode?.stop();
    if (running && ownsAgent)
      await running.agent
        .stop()
        .catch((stopError: unknown) => logger.warn({ err: stopError }, 'stopping the agent failed'));
    takeRosDown();
    throw error;
  }

  const agent = running.agent;
  const started = uploadNode;
  const exit = options.exit ?? ((code: number) => process.exit(code));

  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let disposeSignals: () => void = () => {};
  /** Set when a signal started the shutdown: `closed` then settles once exit() was called. */
  let exitsAfterShutdown = false;
  let stopping: Promise<void> | undefined;
  const shutdown = (shutdownOptions: { cut?: AbortSignal; drain?: boolean } = {}): Promise<void> =>
    (stopping ??= (async () => {
      try {
        if (shutdownOptions.drain !== false)
          await agent.drain({ ...(shutdownOptions.cut ? { cut: shutdownOptions.cut } : {}) });
        const stopped = await withDeadline(agent.stop(), STOP_SECONDS * 1000);
        if (!stopped)
          logger.warn(`the agent did not finish stopping within ${STOP_SECONDS} s; the ROS node goes down anyway`);
      } catch (error) {
        logger.error({ err: error }, 'the agent failed to stop cleanly');
      } finally {
        started.stop();
        takeRosDown();
        disposeSignals();
        if (!exitsAfterShutdown) resolveClosed();
      }
    })());

  if (options.handleSignals !== false) {
    const signals = handleStopSignals({
      logger,
      ...(options.signals ? { signals: options.signals } : {}),
      stop: (cut) => {
        exitsAfterShutdown = stopping === undefined;
        return shutdown({ cut });
      },
      exitNow: (code) => {
        takeRosDown();
        exit(code);
      },
    });
    disposeSignals = signals.dispose;
    signals.stopped
      .then(
        () => exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          exit(1);
        },
      )
      .finally(resolveClosed);
  }

  return { fullyQualifiedName: node.fullyQualifiedName, agent, shutdown, closed };
}

/** Applies ROS-given settings to an agent that already runs; returns the settings in force. */
function applySettings(
  agent: AgentController,
  config: Record<string, unknown>,
  settings: RosSettings,
  schema: ParameterSchema,
): Record<string, unknown> {
  for (const [key, value] of Object.entries(settings)) {
    if (config[key] === value) continue;
    try {
      agent.setOption(key, value);
    } catch (error) {
      const name = schema.options.find((option) => option.key === key)?.name ?? key;
      throw new UploadError(
        'CONFIG_INVALID',
        `ROS parameter ${name} cannot be applied to the running agent: ${(error as Error).message}`,
        { cause: error },
      );
    }
    config[key] = value;
  }
  return config;
}

/** True when the promise settled in time (its rejection is rethrown), false on timeout. */
async function withDeadline(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
