import { UploadError } from '../../common/errors/upload-error.js';
import type { RosBinding } from './ros-seam.js';

/** `--ros`: force ROS mode (fail clearly without it); `--no-ros`: never; neither: when usable. */
export type RosMode = 'auto' | 'on' | 'off';

export type RosAvailability = { available: true; binding: RosBinding } | { available: false; reason: string };

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  /** Loads rclnodejs (tests replace it). Default: agent/ros/rclnodejs-binding.ts. */
  load?: () => Promise<RosBinding>;
}

/** The mode from a parsed `--ros` / `--no-ros` flag (parseArgs with allowNegative gives false for --no-ros). */
export function rosModeFromFlag(flag: boolean | undefined): RosMode {
  return flag === undefined ? 'auto' : flag ? 'on' : 'off';
}

/**
 * Whether ROS 2 is usable here: ROS 2 must be sourced (ROS_DISTRO or AMENT_PREFIX_PATH set) and
 * rclnodejs must load. The environment is checked first because importing rclnodejs without a
 * sourced ROS makes it try to rebuild its addon (slowly) before it throws. Never throws.
 */
export async function probeRos(options: ProbeOptions = {}): Promise<RosAvailability> {
  const env = options.env ?? process.env;
  if (!env.ROS_DISTRO && !env.AMENT_PREFIX_PATH) {
    return {
      available: false,
      reason:
        'ROS 2 is not sourced (ROS_DISTRO and AMENT_PREFIX_PATH are unset): ' +
        'run `source /opt/ros/<distro>/setup.bash` first',
    };
  }
  const load = options.load ?? (async () => (await import('./rclnodejs-binding.js')).loadRclnodejs());
  try {
    return { available: true, binding: await load() };
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    // Node says ERR_MODULE_NOT_FOUND "Cannot find package 'rclnodejs'"; bundlers word it otherwise.
    const notInstalled = /cannot find (package|module) ['"]rclnodejs['"]|could not resolve ['"]rclnodejs['"]/i.test(
      String(detail),
    );
    return {
      available: false,
      reason: notInstalled
        ? `rclnodejs is not installed: with ROS 2 (${env.ROS_DISTRO ?? 'sourced'}) sourced, ` +
          `run \`npm_config_yes=true npm install rclnodejs@2\` in the agent's folder`
        : `rclnodejs could not be loaded (${detail}): reinstall it with ` +
          `ROS 2 sourced: \`npm_config_yes=true npm install rclnodejs@2\``,
    };
  }
}

/**
 * Resolves `--ros` / `--no-ros` / auto. `on` without a usable ROS throws an UploadError
 * ROS_UNAVAILABLE whose message says what is missing; `auto` returns the reason instead, so the
 * program can run standalone (and log it); `off` never loads rclnodejs.
 */
export async function loadRos(mode: RosMode, options: ProbeOptions = {}): Promise<RosAvailability> {
  if (mode === 'off') return { available: false, reason: 'ROS mode is off (--no-ros)' };
  const result = await probeRos(options);
  if (!result.available && mode === 'on') {
    throw new UploadError('ROS_UNAVAILABLE', `--ros was given but ROS 2 is not usable: ${result.reason}`);
  }
  return result;
}
