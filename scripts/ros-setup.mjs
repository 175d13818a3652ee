#!/usr/bin/env node
/**
 * `npm run ros:setup`: makes this checkout ready to run as the ROS 2 node upload_agent, with the
 * ROS 2 that is sourced in this shell and whichever npm runs it (checked with npm 10 and 11).
 *
 *   1. checks the environment: Node.js >= 20.20.2, ROS 2 sourced, `ros2` on PATH, the project's
 *      own `npm install` done;
 *   2. with --workspace DIR: colcon-builds msgs/upload_agent_msgs and launch/upload_agent_bringup
 *      into DIR and uses that overlay for the steps below;
 *   3. installs rclnodejs (the optional peer dependency) with
 *      `npm install --no-save --save-optional --ignore-scripts rclnodejs@<range>`: the form that
 *      installs it on npm 10 and on npm 11 (`--no-save` alone installs nothing on npm 11, and
 *      `npm install rclnodejs@2` rewrites the peer range in package.json), leaving package.json
 *      and package-lock.json byte-identical (checked, and restored if npm touched them);
 *   4. builds rclnodejs's addon for the sourced ROS 2 (its own scripts/install.cjs: a prebuilt
 *      binary where one matches, node-gyp otherwise), again when the distro or ROS 2 changed;
 *   5. generates rclnodejs's messages for everything on AMENT_PREFIX_PATH (the overlay included),
 *      when a type is missing or an interface file changed;
 *   6. checks in a fresh process that rclnodejs loads and knows every type the node uses, and
 *      says exactly what is missing and how to fix it.
 * Steps that are already done are skipped, so it can run any number of times. A later plain
 * `npm install` or `npm ci` removes rclnodejs again (it is not in package.json, on purpose): run
 * this again after them.
 *
 * Exit codes: 0 ready; 1 not ready (a step failed or a type is missing; the reason and the fix
 * are printed); 2 cannot run here (ROS 2 not sourced, Node.js too old, `npm install` not done,
 * a bad option). Every problem is printed by this script itself, so `npm run -s` shows it too.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Every interface type the node uses (agent/ros/interface-names.ts; a test keeps them equal). */
export const REQUIRED_TYPES = [
  'upload_agent_msgs/msg/UploadStatus',
  'upload_agent_msgs/msg/UploadQueue',
  'upload_agent_msgs/srv/Enqueue',
  'std_msgs/msg/String',
  'std_srvs/srv/Trigger',
  'diagnostic_msgs/msg/DiagnosticArray',
  'rosbag2_interfaces/msg/WriteSplitEvent',
];

/** What the node does without each package (the node itself runs on, and warns once). */
export const PACKAGE_FEATURES = {
  upload_agent_msgs: 'upload_status and ~/queue fall back to std_msgs/String JSON, and there is no ~/enqueue',
  std_msgs: 'the JSON fallback of upload_status and ~/queue is not available',
  std_srvs: 'there are no ~/pause, ~/resume and ~/retry_failed services',
  diagnostic_msgs: 'nothing is published on /diagnostics',
  rosbag2_interfaces: "rosbag2's split events are not used (the watcher still finds every closed split)",
};

/** rclnodejs 2.x needs Node.js >= 20.20.2. */
export const MIN_NODE = [20, 20, 2];
/** The distros rclnodejs 2.2 supports (Humble and Jazzy run live here; see docs/ros.md). */
export const KNOWN_DISTROS = ['humble', 'jazzy', 'kilted', 'lyrical', 'rolling'];

const USAGE = `Usage: npm run ros:setup [-- [--workspace DIR] [--check] [--force]]

Makes this checkout ready to run as the ROS 2 node upload_agent, with the ROS 2 sourced in this
shell: installs rclnodejs (without touching package.json or package-lock.json), builds it for
this ROS 2, generates its messages and checks every interface type the node uses.

  --workspace DIR  also colcon-build msgs/upload_agent_msgs and launch/upload_agent_bringup into
                   DIR and use it (then \`source DIR/install/setup.bash\` in every shell that runs
                   the agent or ros2 launch)
  --check          change nothing; say what is missing (exit 0 ready, 1 not ready)
  --force          install, build and generate again even if it looks done
`;

/**
 * The options, or `{ error }`.
 * @param {string[]} argv
 * @returns {{ check: boolean, force: boolean, help: boolean, workspace: string | undefined } | { error: string }}
 */
export function parseSetupArgs(argv) {
  const options = { check: false, force: false, help: false, workspace: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--check') options.check = true;
    else if (arg === '--force') options.force = true;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else if (arg === '--workspace' || arg.startsWith('--workspace=')) {
      const value = arg === '--workspace' ? argv[++i] : arg.slice('--workspace='.length);
      if (!value) return { error: '--workspace needs a folder, e.g. --workspace ~/upload_ws' };
      options.workspace = path.resolve(value);
    } else return { error: `unknown option ${arg}` };
  }
  if (options.check && options.force) return { error: '--check and --force exclude each other' };
  return options;
}

/**
 * Whether `version` (x.y.z) satisfies `range`: `^x.y.z`, `~x.y.z`, `x.y.z` or a bare major `x`.
 * @param {string} version
 * @param {string} range
 */
export function satisfiesRange(version, range) {
  const parse = (text) =>
    text
      .split('-')[0]
      .split('.')
      .map((part) => Number.parseInt(part, 10));
  const have = parse(version);
  if (have.length < 3 || have.some(Number.isNaN)) return false;
  const trimmed = range.trim();
  const operator = /^[\^~]/.test(trimmed) ? trimmed[0] : '';
  const want = parse(trimmed.slice(operator.length));
  if (want.some(Number.isNaN)) return false;
  if (want.length === 1) return have[0] === want[0];
  while (want.length < 3) want.push(0);
  const atLeast = compareVersions(have, want) >= 0;
  if (operator === '^') return atLeast && have[0] === want[0] && (want[0] !== 0 || have[1] === want[1]);
  if (operator === '~') return atLeast && have[0] === want[0] && have[1] === want[1];
  return compareVersions(have, want) === 0;
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * What stops the setup from running here, each with its fix (empty: it can run).
 * @param {{ env: NodeJS.ProcessEnv, nodeVersion: string, ros2: string | undefined,
 *   exists: (file: string) => boolean, root: string, dependencies: string[] }} input
 * @returns {string[]}
 */
export function environmentProblems({ env, nodeVersion, ros2, exists, root, dependencies }) {
  const problems = [];
  const node = nodeVersion.replace(/^v/, '').split('.').map(Number);
  if (compareVersions(node, MIN_NODE) < 0)
    problems.push(
      `rclnodejs 2 needs Node.js >= ${MIN_NODE.join('.')}; this is ${nodeVersion}: install a newer Node.js`,
    );
  if (!env.ROS_DISTRO || !env.AMENT_PREFIX_PATH) {
    problems.push(
      'ROS 2 is not sourced in this shell (ROS_DISTRO and AMENT_PREFIX_PATH are unset): ' +
        'run `source /opt/ros/<distro>/setup.bash` (humble or jazzy) first, then `npm run ros:setup` again',
    );
  } else if (!ros2) {
    problems.push(
      `the ros2 command is not on PATH (rclnodejs finds ROS 2 through \`which ros2\`): ` +
        `install ros-${env.ROS_DISTRO}-ros-base, or source a ROS 2 that has ros2cli`,
    );
  } else {
    const rosRoot = path.dirname(path.dirname(ros2));
    if (!exists(path.join(rosRoot, 'include')) || !exists(path.join(rosRoot, 'lib')))
      problems.push(
        `rclnodejs builds against ${rosRoot} (the folder above \`which ros2\`), which has no include/ and lib/: ` +
          'use a binary install (/opt/ros/<distro>) or a ROS 2 built with `colcon build --merge-install`',
      );
  }
  const missing = dependencies.filter((name) => !exists(path.join(root, 'node_modules', name, 'package.json')));
  if (missing.length > 0)
    problems.push(
      `the project's own dependencies are not installed (${missing.slice(0, 3).join(', ')}` +
        `${missing.length > 3 ? ', ...' : ''}): run \`npm install\` first; ros:setup adds rclnodejs after it`,
    );
  return problems;
}

/**
 * The advice for types rclnodejs does not know after the setup, one entry per package.
 * @param {{ missing: Record<string, string>, distro: string, root: string,
 *   prefixOf: (pkg: string) => string | undefined, log: string, workspace: string | undefined }} input
 * @returns {string[]}
 */
export function missingTypeAdvice({ missing, distro, root, prefixOf, log, workspace }) {
  const byPackage = new Map();
  for (const [type, error] of Object.entries(missing)) {
    const pkg = type.split('/')[0];
    byPackage.set(pkg, [...(byPackage.get(pkg) ?? []), { type, error }]);
  }
  const advice = [];
  for (const [pkg, types] of byPackage) {
    const names = types.map((entry) => entry.type).join(', ');
    const without = PACKAGE_FEATURES[pkg] ? ` (without it ${PACKAGE_FEATURES[pkg]})` : '';
    const prefix = prefixOf(pkg);
    if (prefix) {
      advice.push(
        `${names}: ${pkg} is on AMENT_PREFIX_PATH (${prefix}) but rclnodejs cannot load it ` +
          `(${types[0].error}); see ${log}, then try \`npm run ros:setup -- --force\``,
      );
    } else if (pkg === 'upload_agent_msgs') {
      const ws = workspace ?? '~/upload_ws';
      advice.push(
        `${names}: the interface package upload_agent_msgs is not built or not sourced${without}. ` +
          `Build it into a workspace and use it: \`npm run ros:setup -- --workspace ${ws}\` ` +
          `(or by hand: \`colcon build --base-paths ${path.join(root, 'msgs/upload_agent_msgs')} ` +
          `${path.join(root, 'launch/upload_agent_bringup')}\` in ${ws}), ` +
          `then \`source ${ws}/install/setup.bash\` in every shell that runs the agent`,
      );
    } else {
      advice.push(
        `${names}: ROS 2 package ${pkg} is not installed${without}. Install it ` +
          `(\`sudo apt install ros-${distro}-${pkg.replaceAll('_', '-')}\`, or build it into your workspace), ` +
          'source ROS 2 again, then run `npm run ros:setup` again',
      );
    }
  }
  return advice;
}

// ---- the run ------------------------------------------------------------------------------------

const root = fileURLToPath(new URL('..', import.meta.url));
const logDir = path.join(root, '.cache', 'ros-setup');
const rclDir = path.join(root, 'node_modules', 'rclnodejs');
/** Written into rclnodejs's folder, so it goes when npm removes rclnodejs. */
const markerFile = path.join(rclDir, '.ros2-upload-agent-setup.json');

class SetupFailure extends Error {
  /**
   * @param {number} code
   * @param {string[]} problems
   */
  constructor(code, problems) {
    super(problems.join('; '));
    this.code = code;
    this.problems = problems;
  }
}

const say = (message) => process.stdout.write(`ros:setup: ${message}\n`);

function main(argv) {
  const options = parseSetupArgs(argv);
  if ('error' in options) throw new SetupFailure(2, [`${options.error}\n\n${USAGE}`]);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const range = pkg.peerDependencies?.rclnodejs ?? '2';
  const ros2 = findOnPath('ros2', process.env.PATH);
  const problems = environmentProblems({
    env: process.env,
    nodeVersion: process.version,
    ros2,
    exists: existsSync,
    root,
    dependencies: Object.keys(pkg.dependencies ?? {}),
  });
  if (problems.length > 0) throw new SetupFailure(2, problems);
  const distro = process.env.ROS_DISTRO;
  const rosRoot = path.dirname(path.dirname(/** @type {string} */ (ros2)));
  if (!KNOWN_DISTROS.includes(distro))
    say(`warning: rclnodejs ${range} supports ${KNOWN_DISTROS.join(', ')}; this is ROS 2 ${distro}`);
  mkdirSync(logDir, { recursive: true });
  const npm = npmCommand();
  say(`ROS 2 ${distro} (${rosRoot}), Node.js ${process.version}, npm ${npm.version}`);

  // 2. The overlay with the two ROS packages.
  let env = { ...process.env, npm_config_yes: 'true' };
  if (options.workspace) {
    if (options.check) {
      const setup = path.join(options.workspace, 'install', 'setup.bash');
      if (!existsSync(setup))
        throw new SetupFailure(1, [
          `${setup} does not exist: run \`npm run ros:setup -- --workspace ${options.workspace}\``,
        ]);
    } else buildWorkspace(options.workspace);
    env = { ...sourced(path.join(options.workspace, 'install', 'setup.bash'), env), npm_config_yes: 'true' };
  }

  // 3. rclnodejs itself.
  let installed = installedVersion();
  const fits = installed !== undefined && satisfiesRange(installed, range);
  let justInstalled = false;
  if (options.check) {
    if (!fits)
      throw new SetupFailure(1, [
        installed === undefined
          ? 'rclnodejs is not installed: run `npm run ros:setup`'
          : `rclnodejs ${installed} is installed, but package.json asks for ${range}: run \`npm run ros:setup\``,
      ]);
  } else if (!fits || options.force) {
    installed = installRclnodejs(npm, range);
    justInstalled = true;
  } else say(`rclnodejs ${installed} is installed`);

  // 4. Its addon, built for this ROS 2.
  const marker = readMarker();
  const target = { rclnodejs: installed, distro, rosRoot, nodeAbi: process.versions.modules };
  const builtHere = marker !== undefined && Object.entries(target).every(([key, value]) => marker[key] === value);
  let fresh = false;
  if (options.check) {
    if (marker !== undefined && !builtHere)
      throw new SetupFailure(1, [
        `rclnodejs was set up for ROS 2 ${marker.distro} (${marker.rosRoot}), not for ${distro} (${rosRoot}): ` +
          'run `npm run ros:setup`',
      ]);
  } else if (justInstalled || (marker !== undefined && !builtHere) || (marker === undefined && !loads(env))) {
    // A build for another ROS 2 goes, with the messages generated for it.
    if (!justInstalled) {
      rmSync(path.join(rclDir, 'build'), { recursive: true, force: true });
      rmSync(path.join(rclDir, 'generated'), { recursive: true, force: true });
    }
    buildRclnodejs(env, distro);
    fresh = true;
  } else if (marker === undefined) say(`rclnodejs loads with ROS 2 ${distro}; keeping its build`);
  else say(`rclnodejs is built for ROS 2 ${distro}`);

  // 5. Messages, for everything on AMENT_PREFIX_PATH (the overlay included).
  const fingerprint = interfaceFingerprint(env.AMENT_PREFIX_PATH ?? '');
  let missing = checkTypes(env);
  const stale = marker?.interfaces !== fingerprint;
  const writeMarker = (interfaces) =>
    writeFileSync(markerFile, `${JSON.stringify({ ...target, interfaces }, null, 2)}\n`);
  if (!options.check && !('rclnodejs' in missing)) {
    // The build is good for this ROS 2 whatever the messages say: the next run does not redo it.
    writeMarker(builtHere ? marker.interfaces : null);
    if (fresh || options.force || stale || Object.keys(missing).length > 0) {
      generateMessages(env);
      missing = checkTypes(env);
    } else say('messages are up to date for the interface packages the node uses');
  }

  // 6. What is missing, and how to fix it.
  const prefixOf = (name) => packagePrefix(name, env.AMENT_PREFIX_PATH ?? '');
  if ('rclnodejs' in missing)
    throw new SetupFailure(1, [
      `rclnodejs does not load with ROS 2 ${distro}: ${missing.rclnodejs}; ` +
        `see ${path.join(logDir, 'check.log')}, then try \`npm run ros:setup -- --force\` (rebuilds it)`,
    ]);
  if (Object.keys(missing).length > 0)
    throw new SetupFailure(1, [
      `rclnodejs does not know ${Object.keys(missing).length} of the ${REQUIRED_TYPES.length} ` +
        'interface types the node uses:',
      ...missingTypeAdvice({
        missing,
        distro,
        root,
        prefixOf,
        log: path.join(logDir, 'generate.log'),
        workspace: options.workspace,
      }),
    ]);
  if (options.check && marker !== undefined && stale)
    throw new SetupFailure(1, [
      'an interface package the node uses changed since the messages were generated: run `npm run ros:setup`',
    ]);
  if (!options.check) writeMarker(fingerprint);
  const from = [...new Set(REQUIRED_TYPES.map((type) => type.split('/')[0]))].map(
    (name) => `${name} (${prefixOf(name) ?? 'rclnodejs'})`,
  );
  say(`ready: rclnodejs ${installed} for ROS 2 ${distro}; messages: ${from.join(', ')}`);
  if (options.workspace)
    say(`next: \`source ${path.join(options.workspace, 'install', 'setup.bash')}\` in every shell that runs the agent`);
  say(
    'a later `npm install` or `npm ci` removes rclnodejs (it is not in package.json): ' +
      'run `npm run ros:setup` again then',
  );
  return 0;
}

/**
 * npm as this script was started with it (`npm_execpath`, so `npx npm@10 run ros:setup` uses
 * npm 10), else npm on PATH.
 */
function npmCommand() {
  const cli = process.env.npm_execpath;
  const [command, prefix] = cli && /npm-cli\.js$/.test(cli) ? [process.execPath, [cli]] : ['npm', []];
  const version = spawnSync(command, [...prefix, '--version'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return { command, prefix, version };
}

function installedVersion() {
  try {
    return JSON.parse(readFileSync(path.join(rclDir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function readMarker() {
  try {
    return JSON.parse(readFileSync(markerFile, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * `npm install --no-save --save-optional --ignore-scripts rclnodejs@<range>`, checking that npm
 * installed it and left package.json and package-lock.json as they were.
 */
function installRclnodejs(npm, range) {
  const manifests = ['package.json', 'package-lock.json'].map((name) => {
    const file = path.join(root, name);
    return { name, file, bytes: existsSync(file) ? readFileSync(file) : undefined };
  });
  const args = [
    'install',
    '--no-save',
    '--save-optional',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    `rclnodejs@${range}`,
  ];
  say(`installing rclnodejs@${range}: npm ${args.join(' ')}`);
  const log = path.join(logDir, 'install.log');
  const result = run(
    npm.command,
    [...npm.prefix, ...args],
    { cwd: root, env: { ...process.env, npm_config_yes: 'true' } },
    log,
  );
  const touched = manifests.filter(({ file, bytes }) => bytes !== undefined && !readFileSync(file).equals(bytes));
  for (const { file, bytes } of touched) writeFileSync(file, bytes);
  if (touched.length > 0)
    throw new SetupFailure(1, [
      `npm ${npm.version} changed ${touched.map((m) => m.name).join(' and ')} while installing rclnodejs; ` +
        'they were put back as they were. Please report this with the npm version',
    ]);
  if (result.status !== 0)
    throw new SetupFailure(1, [
      `npm install of rclnodejs@${range} failed (exit ${result.status}):\n${tail(log)}\n(full log: ${log})`,
    ]);
  const version = installedVersion();
  if (version === undefined || !satisfiesRange(version, range))
    throw new SetupFailure(1, [
      `npm ${npm.version} did not install rclnodejs@${range} (npm said: ${tail(log, 3).replaceAll('\n', ' ')}); ` +
        `full log: ${log}`,
    ]);
  say(`installed rclnodejs ${version}`);
  return version;
}

/** rclnodejs's own install step: a prebuilt binary where one matches this distro and OS, else a node-gyp build. */
function buildRclnodejs(env, distro) {
  say(`building rclnodejs for ROS 2 ${distro} (where no prebuilt binary fits this takes minutes)`);
  const log = path.join(logDir, 'build.log');
  const started = performance.now();
  const result = run(process.execPath, ['scripts/install.cjs'], { cwd: rclDir, env }, log);
  if (result.status !== 0)
    throw new SetupFailure(1, [
      `building rclnodejs for ROS 2 ${distro} failed (exit ${result.status}):\n${tail(log)}\n(full log: ${log}). ` +
        'It needs a C++ compiler, make and python3 (node-gyp), and the npm registry (its build runs `npx rimraf`)',
    ]);
  say(`rclnodejs built in ${Math.round((performance.now() - started) / 1000)} s`);
}

function generateMessages(env) {
  say('generating rclnodejs messages for every interface package on AMENT_PREFIX_PATH');
  const log = path.join(logDir, 'generate.log');
  const started = performance.now();
  // Its generator catches its own errors and exits 0: the check after it tells.
  run(process.execPath, ['scripts/generate_messages.cjs'], { cwd: rclDir, env }, log);
  say(`messages generated in ${Math.round((performance.now() - started) / 1000)} s`);
}

function loads(env) {
  return !('rclnodejs' in checkTypes(env));
}

/**
 * Loads rclnodejs in a fresh process and asks it for every required type. Returns what failed:
 * `{ rclnodejs: reason }` when it does not load at all, else `{ [type]: reason }`.
 * @returns {Record<string, string>}
 */
function checkTypes(env) {
  const script = `
    let rcl;
    try { rcl = (await import('rclnodejs')).default; }
    catch (error) {
      console.log(JSON.stringify({ rclnodejs: String(error?.message ?? error).split('\\n')[0] }));
      process.exit(0);
    }
    const missing = {};
    for (const type of ${JSON.stringify(REQUIRED_TYPES)}) {
      try { rcl.require(type); } catch (error) { missing[type] = String(error?.message ?? error).split('\\n')[0]; }
    }
    console.log(JSON.stringify(missing));
    process.exit(0);`;
  const log = path.join(logDir, 'check.log');
  const result = run(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env }, log);
  const last = (result.stdout ?? '').trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last);
  } catch {
    return { rclnodejs: `the check process exited with ${result.status ?? result.signal}` };
  }
}

function buildWorkspace(workspace) {
  if (!findOnPath('colcon', process.env.PATH))
    throw new SetupFailure(2, [
      '--workspace needs colcon: `sudo apt install python3-colcon-common-extensions` ' +
        '(or pip install colcon-common-extensions)',
    ]);
  mkdirSync(workspace, { recursive: true });
  const packages = ['msgs/upload_agent_msgs', 'launch/upload_agent_bringup'].map((dir) => path.join(root, dir));
  say(`building upload_agent_msgs and upload_agent_bringup into ${workspace} (colcon)`);
  const log = path.join(logDir, 'colcon.log');
  const args = ['--log-base', path.join(workspace, 'log'), 'build', '--base-paths', ...packages];
  args.push('--build-base', path.join(workspace, 'build'), '--install-base', path.join(workspace, 'install'));
  const result = run('colcon', args, { cwd: workspace, env: process.env }, log);
  if (result.status !== 0)
    throw new SetupFailure(1, [`colcon build failed (exit ${result.status}):\n${tail(log)}\n(full log: ${log})`]);
}

/** The environment after `source setup.bash` (what the user's shell gets), for the child processes. */
function sourced(setupFile, env) {
  const result = spawnSync('bash', ['-c', 'source "$1" >/dev/null && env -0', 'ros-setup', setupFile], {
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new SetupFailure(1, [`\`source ${setupFile}\` failed: ${result.stderr.trim()}`]);
  return Object.fromEntries(
    result.stdout
      .split('\0')
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
}

/** The prefix on AMENT_PREFIX_PATH that provides `pkg` (the first, as ROS 2 resolves it). */
function packagePrefix(pkg, amentPrefixPath) {
  return amentPrefixPath
    .split(path.delimiter)
    .filter(Boolean)
    .find((prefix) => existsSync(path.join(prefix, 'share', pkg, 'package.xml')));
}

/**
 * A hash of the interface files of the packages the node uses, as found on AMENT_PREFIX_PATH:
 * when it changes (an overlay rebuilt with changed messages, another ROS 2), messages are
 * generated again.
 */
function interfaceFingerprint(amentPrefixPath) {
  const hash = createHash('sha256');
  for (const pkg of [...new Set(REQUIRED_TYPES.map((type) => type.split('/')[0]))].sort()) {
    const prefix = packagePrefix(pkg, amentPrefixPath);
    hash.update(`${pkg}@${prefix ?? '-'}\n`);
    if (!prefix) continue;
    for (const kind of ['msg', 'srv', 'action']) {
      const dir = path.join(prefix, 'share', pkg, kind);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir).sort()) {
        const file = path.join(dir, name);
        if (statSync(file).isFile()) hash.update(name).update(readFileSync(file));
      }
    }
  }
  return hash.digest('hex');
}

function findOnPath(command, searchPath = '') {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Runs a command with its output appended to `log` (stdin closed; each log starts empty at each
 * run of the setup), and returns spawnSync's result with `output`, this command's part.
 */
function run(command, args, options, log) {
  const result = spawnSync(command, args, { ...options, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? `\n${result.error.message}\n` : ''}`;
  if (!startedLogs.has(log)) {
    startedLogs.add(log);
    writeFileSync(log, '');
  }
  appendFileSync(
    log,
    `$ ${command} ${args.join(' ')}\n(cwd ${options.cwd}; exit ${result.status ?? result.signal})\n${output}\n`,
  );
  return { ...result, output };
}

/** The logs written in this run (each is emptied the first time). */
const startedLogs = new Set();

/**
 * The failure as printed: one line for one problem, else a header and one indented line each.
 * @param {number} code
 * @param {string[]} problems
 */
export function failureText(code, problems) {
  const label = `ros:setup: ${code === 2 ? 'cannot run here' : 'NOT READY'}`;
  if (problems.length === 1) return `${label}: ${problems[0]}\n`;
  const [first = '', ...rest] = problems;
  const [header, items] = first.endsWith(':') ? [`${label}: ${first}`, rest] : [`${label}:`, problems];
  return `${header}\n${items.map((line) => `  - ${line}\n`).join('')}`;
}

function tail(log, lines = 25) {
  try {
    return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  let code;
  try {
    code = main(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof SetupFailure)) throw error;
    process.stderr.write(failureText(error.code, error.problems));
    code = error.code;
  }
  process.exitCode = code;
}
