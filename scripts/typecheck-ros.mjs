#!/usr/bin/env node
/**
 * Type-checks the one module that imports rclnodejs (agent/ros/rclnodejs-binding.ts) against
 * rclnodejs 2.x's real typings. rclnodejs cannot be installed normally without ROS 2, so its
 * package is fetched with `npm install --no-save --ignore-scripts` into .cache/rclnodejs (outside
 * the project's node_modules; gitignored) once, and reused. tsconfig.ros.json includes those
 * typings and not types/rclnodejs-fallback.d.ts (the `any` shorthand the normal build uses).
 * Works on a machine without ROS; needs the npm registry the first time only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cacheDir = path.join(root, '.cache', 'rclnodejs');
const typings = path.join(cacheDir, 'node_modules', 'rclnodejs', 'types', 'index.d.ts');
const stampFile = path.join(cacheDir, 'installed-spec.txt');
const range = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).peerDependencies?.rclnodejs ?? '2';
const spec = `rclnodejs@${range}`;

function fail(message) {
  console.error(`typecheck:ros: ${message}`);
  process.exit(1);
}

const cached = existsSync(typings) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === spec;
if (!cached) {
  mkdirSync(cacheDir, { recursive: true });
  // Its own package.json, so npm never walks up to the project's.
  writeFileSync(
    path.join(cacheDir, 'package.json'),
    `${JSON.stringify({ name: 'rclnodejs-typings-cache', private: true }, null, 2)}\n`,
  );
  console.log(`typecheck:ros: fetching ${spec} typings into ${path.relative(root, cacheDir)} (once)`);
  const npmCli = process.env.npm_execpath;
  const [command, prefixArgs] =
    npmCli && /npm-cli\.js$/.test(npmCli)
      ? [process.execPath, [npmCli]]
      : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []];
  const result = spawnSync(
    command,
    [
      ...prefixArgs,
      'install',
      '--no-save',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--loglevel=error',
      spec,
    ],
    { cwd: cacheDir, stdio: 'inherit', env: { ...process.env, npm_config_yes: 'true' } },
  );
  if (result.status !== 0 || !existsSync(typings)) {
    fail(
      `could not fetch ${spec} ` +
        `(npm install --no-save --ignore-scripts failed${result.error ? `: ${result.error.message}` : ''}); ` +
        `the npm registry is needed the first time`,
    );
  }
  writeFileSync(stampFile, `${spec}\n`);
}

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const check = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.ros.json')], {
  cwd: root,
  stdio: 'inherit',
});
if (check.status !== 0) fail("agent/ros/rclnodejs-binding.ts does not match rclnodejs's real typings (see above)");
const version = JSON.parse(
  readFileSync(path.join(cacheDir, 'node_modules', 'rclnodejs', 'package.json'), 'utf8'),
).version;
console.log(`typecheck:ros: agent/ros/rclnodejs-binding.ts matches rclnodejs ${version}'s typings`);
