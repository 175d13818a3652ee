/**
 * The ROS 2 layer of ros2-upload-agent. The program (agent/cli/) uses it like this:
 *
 * ```ts
 * const own = stripRosArgs(process.argv.slice(2));        // always, before its own parsing
 * const ros = await loadRos(rosModeFromFlag(flags.ros));  // --ros / --no-ros / auto
 * if (ros.available) {
 *   const handle = await startRosNode({
 *     binding: ros.binding, argv: process.argv, logger,
 *     agent: async (rosSettings) => {
 *       const config = resolve(..., rosSettings);
 *       return { agent: await startAgent(config), config };
 *     },
 *   });
 *   await handle.closed;                                  // SIGINT/SIGTERM are handled (exit within 5 s)
 * } else { logger.debug(ros.reason); ... run standalone ... }
 * ```
 *
 * Only agent/ros/rclnodejs-binding.ts imports rclnodejs, lazily; importing this index never
 * loads it.
 */
export { hasRosArgs, parseRosArgs, stripRosArgs, type RosArguments } from './ros-args.js';
export {
  loadRos,
  probeRos,
  rosModeFromFlag,
  type ProbeOptions,
  type RosAvailability,
  type RosMode,
} from './ros-probe.js';
export {
  SHUTDOWN_DRAIN_SECONDS,
  startRosNode,
  type AgentFactory,
  type RosNodeHandle,
  type RunningAgent,
  type StartRosNodeOptions,
} from './start-ros-node.js';
export type { RosSettings } from './parameter-bridge.js';
export { rosNames } from './upload-agent-node.js';
export type { RosBinding } from './ros-seam.js';
