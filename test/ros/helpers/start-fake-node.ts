import { EventEmitter } from 'node:events';
import { startRosNode, type RosNodeHandle, type RosSettings } from '../../../agent/ros/index.js';
import { captureLogger, type LogLine } from './capture-logger.js';
import { FakeAgent } from './fake-agent.js';
import { FakeRos, type FakeNode } from './fake-ros.js';

export interface FakeNodeRun {
  ros: FakeRos;
  node: FakeNode;
  agent: FakeAgent;
  handle: RosNodeHandle;
  lines: LogLine[];
  warnings: () => LogLine[];
  signals: EventEmitter;
  exits: number[];
  /** What the agent factory received. */
  rosSettings: RosSettings | undefined;
}

/**
 * Starts the real ROS layer (startRosNode) on the fake seam with a fake agent, as the program
 * does: argv as process.argv, the agent created by a factory that merges ROS settings last.
 */
export async function startFakeNode(
  options: { rosArgs?: string[]; missing?: string[]; distro?: 'humble' | 'jazzy'; agent?: FakeAgent } = {},
): Promise<FakeNodeRun> {
  const ros = new FakeRos({ distro: options.distro ?? 'humble', missing: options.missing ?? [] });
  const agent = options.agent ?? new FakeAgent();
  const { logger, lines, warnings } = captureLogger();
  const signals = new EventEmitter();
  const exits: number[] = [];
  let rosSettings: RosSettings | undefined;
  const argv = [
    '/usr/bin/node',
    '/opt/agent/dist/agent/cli/main.js',
    'watch',
    ...(options.rosArgs ? ['--ros-args', ...options.rosArgs] : []),
  ];
  const handle = await startRosNode({
    binding: ros,
    argv,
    logger,
    signals,
    exit: (code) => exits.push(code),
    agent: async (settings) => {
      rosSettings = settings;
      Object.assign(agent.config, settings);
      return { agent, config: agent.config };
    },
  });
  return { ros, node: ros.node, agent, handle, lines, warnings, signals, exits, rosSettings };
}
