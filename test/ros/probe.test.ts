import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRos, probeRos, rosModeFromFlag } from '../../agent/ros/index.js';
import { isUploadError } from '../../common/errors/upload-error.js';
import { FakeRos } from './helpers/fake-ros.js';

describe('choosing ROS mode', () => {
  it('maps --ros / --no-ros / neither', () => {
    expect(rosModeFromFlag(true)).toBe('on');
    expect(rosModeFromFlag(false)).toBe('off');
    expect(rosModeFromFlag(undefined)).toBe('auto');
  });

  it('without ROS sourced, says so and never tries to load rclnodejs', async () => {
    let loads = 0;
    const load = async () => {
      loads += 1;
      return new FakeRos();
    };
    const result = await probeRos({ env: { PATH: '/usr/bin' }, load });
    expect(result).toEqual({
      available: false,
      reason: expect.stringContaining('ROS 2 is not sourced (ROS_DISTRO and AMENT_PREFIX_PATH are unset)'),
    });
    expect(loads).toBe(0);
    const error = await loadRos('on', { env: {}, load }).catch((caught: unknown) => caught);
    expect(isUploadError(error, 'ROS_UNAVAILABLE')).toBe(true);
    expect((error as Error).message).toMatch(
      /^--ros was given but ROS 2 is not usable: ROS 2 is not sourced .*source \/opt\/ros\/<distro>\/setup\.bash/,
    );
    expect(await loadRos('auto', { env: {}, load })).toMatchObject({ available: false });
    expect(await loadRos('off', { env: { ROS_DISTRO: 'humble' }, load })).toEqual({
      available: false,
      reason: 'ROS mode is off (--no-ros)',
    });
    expect(loads).toBe(0);
  });

  it('with ROS sourced, loads the binding', async () => {
    const binding = new FakeRos();
    expect(
      await loadRos('on', {
        env: { ROS_DISTRO: 'jazzy', AMENT_PREFIX_PATH: '/opt/ros/jazzy' },
        load: async () => binding,
      }),
    ).toEqual({ available: true, binding });
  });

  it('with the real loader: rclnodejs loads where installed, else the reason names the install command', async () => {
    const installed = (() => {
      try {
        createRequire(import.meta.url).resolve('rclnodejs');
        return true;
      } catch {
        return false;
      }
    })();
    const result = await probeRos({ env: { ROS_DISTRO: 'humble', AMENT_PREFIX_PATH: '/opt/ros/humble' } });
    if (installed) {
      // A robot with rclnodejs: the real binding loads.
      expect(result.available).toBe(true);
    } else {
      // rclnodejs is an optional peer dependency and is not installed on machines without ROS.
      expect(result).toEqual({
        available: false,
        reason:
          'rclnodejs is not installed: with ROS 2 (humble) sourced, run ' +
          "`npm_config_yes=true npm install rclnodejs@2` in the agent's folder",
      });
    }
  });

  it('a loader that throws gives the first line of its error and the fix', async () => {
    const result = await probeRos({
      env: { ROS_DISTRO: 'humble' },
      load: async () => {
        throw new Error('librcl.so: cannot open shared object file\nat dlopen');
      },
    });
    expect(result).toEqual({
      available: false,
      reason:
        'rclnodejs could not be loaded (librcl.so: cannot open shared object file): ' +
        'reinstall it with ROS 2 sourced: `npm_config_yes=true npm install rclnodejs@2`',
    });
  });
});

describe('the seam', () => {
  it('only agent/ros/rclnodejs-binding.ts imports rclnodejs, lazily, with its default export', () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const sources = (dir: string): string[] =>
      readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory()
          ? sources(path.join(dir, entry.name))
          : entry.name.endsWith('.ts')
            ? [path.join(dir, entry.name)]
            : [],
      );
    const importers = [...sources('agent'), ...sources('common'), ...sources('server'), 'index.ts'].filter((file) =>
      /(?:from|import)\s*\(?\s*['"]rclnodejs['"]/.test(readFileSync(path.join(root, file), 'utf8')),
    );
    expect(importers).toEqual([path.join('agent', 'ros', 'rclnodejs-binding.ts')]);
    const binding = readFileSync(path.join(root, 'agent/ros/rclnodejs-binding.ts'), 'utf8');
    expect(binding).toContain("(await import('rclnodejs')).default");
    expect(binding).not.toMatch(/^import (?!type)[^;]*['"]rclnodejs['"]/m);
  });
});
