/**
 * ROS 2 command-line arguments, without rclnodejs (pure functions, usable when ROS is absent).
 *
 * rcl's rules: a ROS section starts at `--ros-args` and runs up to a lone `--` (which ends it
 * and is removed too) or to the end of argv. There may be several sections. Everything else
 * belongs to the program.
 */

import { present } from '../../common/errors/present.js';

const ROS_ARGS = '--ros-args';
const END_OF_ROS_ARGS = '--';

/** ROS flags that take a value (so the value is never mistaken for a flag). */
const FLAGS_WITH_VALUE = new Set([
  '-p',
  '--param',
  '-r',
  '--remap',
  '--params-file',
  '-e',
  '--enclave',
  '--log-level',
  '--log-config-file',
  '--log-file-name',
]);

/**
 * Removes every `--ros-args ... [--]` section from argv, including a `--ros-args` at the very
 * end. The program's own arguments keep their order. The CLI runs this before its own parsing,
 * with or without ROS, so `ros2 run`/`ros2 launch` command lines never trip "unknown flag".
 */
export function stripRosArgs(argv: readonly string[]): string[] {
  const result: string[] = [];
  let inRos = false;
  for (const arg of argv) {
    if (inRos) {
      if (arg === END_OF_ROS_ARGS) inRos = false;
      continue;
    }
    if (arg === ROS_ARGS) {
      inRos = true;
      continue;
    }
    result.push(arg);
  }
  return result;
}

/** What the ROS sections of a command line say, in the order given. */
export interface RosArguments {
  /** `--params-file FILE`, in order. */
  paramsFiles: string[];
  /** `-p name:=value` / `--param name:=value`, raw (the value is YAML, as rcl reads it). */
  params: { name: string; value: string }[];
  /** `-r from:=to` / `--remap from:=to`, including `__ns:=` and `__node:=`. */
  remaps: { from: string; to: string }[];
}

/** The ROS arguments in argv (only inside `--ros-args` sections), for the parts the node reads itself. */
export function parseRosArgs(argv: readonly string[]): RosArguments {
  const result: RosArguments = { paramsFiles: [], params: [], remaps: [] };
  let inRos = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = present(argv[i], 'a command-line argument');
    if (!inRos) {
      if (arg === ROS_ARGS) inRos = true;
      continue;
    }
    if (arg === END_OF_ROS_ARGS) {
      inRos = false;
      continue;
    }
    if (!FLAGS_WITH_VALUE.has(arg)) continue;
    const value = argv[i + 1];
    i += 1;
    if (value === undefined) break;
    if (arg === '--params-file') result.paramsFiles.push(value);
    else if (arg === '-p' || arg === '--param' || arg === '-r' || arg === '--remap') {
      const at = value.indexOf(':=');
      if (at <= 0) continue;
      const [left, right] = [value.slice(0, at), value.slice(at + 2)];
      if (arg === '-p' || arg === '--param') result.params.push({ name: left, value: right });
      else result.remaps.push({ from: left, to: right });
    }
  }
  return result;
}

/** True when argv has a `--ros-args` section (a process started by `ros2 run` or `ros2 launch` always has one). */
export function hasRosArgs(argv: readonly string[]): boolean {
  return argv.includes(ROS_ARGS);
}
