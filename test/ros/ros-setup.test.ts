import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { rosInterfaces } from '../../agent/ros/interface-names.js';
import {
  environmentProblems,
  failureText,
  missingTypeAdvice,
  parseSetupArgs,
  REQUIRED_TYPES,
  satisfiesRange,
} from '../../scripts/ros-setup.mjs';

/**
 * `npm run ros:setup` (scripts/ros-setup.mjs) without ROS: its decisions and messages, and the
 * real script's answer on a machine where ROS 2 is not sourced (directly and under `npm run -s`).
 * Its installing, building and generating run live in `npm run test:ros`.
 */
const root = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** An environment with everything but ROS (PATH and HOME kept, so npm runs). */
function withoutRos(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR']) if (process.env[key]) env[key] = process.env[key];
  return env;
}

describe('ros:setup decisions', () => {
  it('checks exactly the interface types the node uses', () => {
    expect([...REQUIRED_TYPES].sort()).toEqual(Object.values(rosInterfaces).sort());
  });

  it('matches the peer range the way npm does for the forms package.json uses', () => {
    expect(satisfiesRange('2.2.0', '^2.2.0')).toBe(true);
    expect(satisfiesRange('2.9.1', '^2.2.0')).toBe(true);
    expect(satisfiesRange('2.1.9', '^2.2.0')).toBe(false);
    expect(satisfiesRange('3.0.0', '^2.2.0')).toBe(false);
    expect(satisfiesRange('2.2.5', '~2.2.0')).toBe(true);
    expect(satisfiesRange('2.3.0', '~2.2.0')).toBe(false);
    expect(satisfiesRange('2.4.0', '2')).toBe(true);
    expect(satisfiesRange('2.2.0', '2.2.0')).toBe(true);
    expect(satisfiesRange('not-a-version', '^2.2.0')).toBe(false);
  });

  it('parses its options and refuses unknown ones', () => {
    expect(parseSetupArgs([])).toEqual({ check: false, force: false, help: false, workspace: undefined });
    expect(parseSetupArgs(['--workspace', 'ws', '--force'])).toMatchObject({
      force: true,
      workspace: path.resolve('ws'),
    });
    expect(parseSetupArgs(['--workspace=/tmp/ws'])).toMatchObject({ workspace: '/tmp/ws' });
    expect(parseSetupArgs(['--workspace'])).toEqual({
      error: '--workspace needs a folder, e.g. --workspace ~/upload_ws',
    });
    expect(parseSetupArgs(['--check', '--force'])).toEqual({ error: '--check and --force exclude each other' });
    expect(parseSetupArgs(['--yes'])).toEqual({ error: 'unknown option --yes' });
  });

  const ready = {
    env: { ROS_DISTRO: 'jazzy', AMENT_PREFIX_PATH: '/opt/ros/jazzy' },
    nodeVersion: 'v20.20.2',
    ros2: '/opt/ros/jazzy/bin/ros2',
    exists: () => true,
    root: '/work/agent',
    dependencies: ['chokidar', 'pino'],
  };

  it('runs where ROS 2 is sourced, ros2 is on PATH in an /opt/ros layout and npm install was done', () => {
    expect(environmentProblems(ready)).toEqual([]);
  });

  it('names each thing that stops it, with the fix', () => {
    expect(environmentProblems({ ...ready, env: {} })).toEqual([
      'ROS 2 is not sourced in this shell (ROS_DISTRO and AMENT_PREFIX_PATH are unset): ' +
        'run `source /opt/ros/<distro>/setup.bash` (humble or jazzy) first, then `npm run ros:setup` again',
    ]);
    expect(environmentProblems({ ...ready, nodeVersion: 'v20.19.0' })).toEqual([
      'rclnodejs 2 needs Node.js >= 20.20.2; this is v20.19.0: install a newer Node.js',
    ]);
    expect(environmentProblems({ ...ready, ros2: undefined })).toEqual([
      'the ros2 command is not on PATH (rclnodejs finds ROS 2 through `which ros2`): ' +
        'install ros-jazzy-ros-base, or source a ROS 2 that has ros2cli',
    ]);
    // An isolated colcon install: bin/ros2 sits in install/ros2cli/, without include/ and lib/ next to it.
    expect(
      environmentProblems({
        ...ready,
        ros2: '/ws/install/ros2cli/bin/ros2',
        exists: (file: string) => !file.startsWith('/ws/install/ros2cli/'),
      }),
    ).toEqual([
      'rclnodejs builds against /ws/install/ros2cli (the folder above `which ros2`), which has no include/ and lib/: ' +
        'use a binary install (/opt/ros/<distro>) or a ROS 2 built with `colcon build --merge-install`',
    ]);
    expect(environmentProblems({ ...ready, exists: (file: string) => !file.includes('node_modules') })).toEqual([
      "the project's own dependencies are not installed (chokidar, pino): " +
        'run `npm install` first; ros:setup adds rclnodejs after it',
    ]);
  });

  it('says what each missing interface package costs and how to get it', () => {
    const advice = missingTypeAdvice({
      missing: {
        'upload_agent_msgs/msg/UploadStatus': 'not found',
        'upload_agent_msgs/msg/UploadQueue': 'not found',
        'diagnostic_msgs/msg/DiagnosticArray': 'not found',
        'rosbag2_interfaces/msg/WriteSplitEvent': 'Cannot find module ./generated/rosbag2_interfaces',
      },
      distro: 'jazzy',
      root: '/work/agent',
      prefixOf: (pkg: string) => (pkg === 'rosbag2_interfaces' ? '/opt/ros/jazzy' : undefined),
      log: '/work/agent/.cache/ros-setup/generate.log',
      workspace: undefined,
    });
    expect(advice).toEqual([
      'upload_agent_msgs/msg/UploadStatus, upload_agent_msgs/msg/UploadQueue: the interface package ' +
        'upload_agent_msgs is not built or not sourced (without it upload_status and ~/queue fall back to ' +
        'std_msgs/String JSON, and there is no ~/enqueue). Build it into a workspace and use it: ' +
        '`npm run ros:setup -- --workspace ~/upload_ws` (or by hand: `colcon build --base-paths ' +
        '/work/agent/msgs/upload_agent_msgs /work/agent/launch/upload_agent_bringup` in ~/upload_ws), ' +
        'then `source ~/upload_ws/install/setup.bash` in every shell that runs the agent',
      'diagnostic_msgs/msg/DiagnosticArray: ROS 2 package diagnostic_msgs is not installed (without it nothing ' +
        'is published on /diagnostics). Install it (`sudo apt install ros-jazzy-diagnostic-msgs`, or build it ' +
        'into your workspace), source ROS 2 again, then run `npm run ros:setup` again',
      'rosbag2_interfaces/msg/WriteSplitEvent: rosbag2_interfaces is on AMENT_PREFIX_PATH (/opt/ros/jazzy) but ' +
        'rclnodejs cannot load it (Cannot find module ./generated/rosbag2_interfaces); see ' +
        '/work/agent/.cache/ros-setup/generate.log, then try `npm run ros:setup -- --force`',
    ]);
  });

  it('prints one line for one problem, else a header and one line each', () => {
    expect(failureText(2, ['ROS 2 is not sourced'])).toBe('ros:setup: cannot run here: ROS 2 is not sourced\n');
    expect(failureText(2, ['a', 'b'])).toBe('ros:setup: cannot run here:\n  - a\n  - b\n');
    expect(failureText(1, ['2 types are missing:', 'x', 'y'])).toBe(
      'ros:setup: NOT READY: 2 types are missing:\n  - x\n  - y\n',
    );
  });
});

describe('ros:setup on a machine without ROS', () => {
  const expected =
    'ros:setup: cannot run here: ROS 2 is not sourced in this shell (ROS_DISTRO and AMENT_PREFIX_PATH are ' +
    'unset): run `source /opt/ros/<distro>/setup.bash` (humble or jazzy) first, then `npm run ros:setup` again\n';

  it('exits 2 and says what is missing and how to fix it, changing nothing', () => {
    const result = spawnSync(process.execPath, ['scripts/ros-setup.mjs'], {
      cwd: root,
      env: withoutRos(),
      encoding: 'utf8',
    });
    expect(result.stderr).toBe(expected);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(2);
  });

  it('says it under `npm run -s` too (npm prints nothing of its own there)', () => {
    const result = spawnSync('npm', ['run', '-s', 'ros:setup'], { cwd: root, env: withoutRos(), encoding: 'utf8' });
    expect(result.stderr).toBe(expected);
    expect(result.status).toBe(2);
  });

  it('refuses an unknown option with the usage', () => {
    const result = spawnSync(process.execPath, ['scripts/ros-setup.mjs', '--fast'], {
      cwd: root,
      env: withoutRos(),
      encoding: 'utf8',
    });
    expect(result.stderr).toContain('ros:setup: cannot run here: unknown option --fast');
    expect(result.stderr).toContain('Usage: npm run ros:setup [-- [--workspace DIR] [--check] [--force]]');
    expect(result.status).toBe(2);
  });
});
