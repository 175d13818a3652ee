import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { agentOptions } from '../../agent/app/agent-options.js';
import { STOP_DEADLINE_SECONDS } from '../../agent/cli/shutdown.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { allElements, parseXml } from './helpers/mini-xml.js';

/**
 * The launch files check their arguments before anything starts (a message naming the argument
 * and an example, not a traceback from the recorder), and leave the agent's drain the time it
 * needs before ros2 launch escalates. The checks are plain Python (launch/.../upload_agent_arguments.py),
 * run here with python3 alone; the launch files that call them run live in `npm run test:ros`.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const LAUNCH = path.join(root, 'launch/upload_agent_bringup/launch');
const read = (file: string): string => readFileSync(path.join(LAUNCH, file), 'utf8');

const dirs: TempDir[] = [];
afterAll(async () => {
  for (const dir of dirs) await dir.remove();
});

type Checked = { bagDir: string } | { error: string; type: string };
interface Case {
  values: Record<string, string>;
  records: boolean;
  home?: string;
}

/**
 * Calls check_arguments(values, records=...) in one python3 process for all cases (python3 starts
 * slowly on a loaded machine), as the launch files do.
 */
function checkAll(cases: Case[]): Checked[] {
  const script = [
    'import json, os, sys',
    `sys.path.insert(0, ${JSON.stringify(LAUNCH)})`,
    'from upload_agent_arguments import check_arguments, LaunchArgumentError',
    'results = []',
    'for case in json.load(sys.stdin):',
    "    if case.get('home'): os.environ['HOME'] = case['home']",
    '    try:',
    "        results.append({'bagDir': check_arguments(case['values'], records=case['records'])})",
    '    except LaunchArgumentError as error:',
    "        results.append({'error': str(error), 'type': type(error).__name__})",
    'print(json.dumps(results))',
  ].join('\n');
  const result = spawnSync('python3', ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (result.error) throw new Error(`python3 is needed for this test: ${result.error.message}`);
  expect(result.status, result.stderr).toBe(0);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout) as Checked[];
}

const check = (values: Record<string, string>, records: boolean, home?: string): Checked =>
  checkAll([{ values, records, ...(home ? { home } : {}) }])[0]!;

const errorOf = (checked: Checked): string => {
  expect(checked).toHaveProperty('error');
  expect((checked as { type: string }).type).toBe('LaunchArgumentError');
  return (checked as { error: string }).error;
};

describe('launch arguments are checked before anything starts', () => {
  const ok = { server_url: 'http://127.0.0.1:8080', topics: '-a', max_bag_duration: '60', drain_timeout: '30' };

  it('an empty or missing bag_dir names the argument and gives an example', () => {
    const results = checkAll([
      { values: ok, records: true },
      ...['', '   '].map((bag_dir) => ({ values: { ...ok, bag_dir }, records: true })),
    ]);
    for (const result of results)
      expect(errorOf(result)).toBe(
        'bag_dir is empty: give the folder to record into and upload from, ' +
          'e.g. bag_dir:=/data/bags server_url:=http://127.0.0.1:8080',
      );
  });

  it('bag_dir is created when the launch file records, expanded, and refused when it is a file', async () => {
    const dir = await createTempDir('launch-args');
    dirs.push(dir);
    const missing = path.join(dir.path, 'new', 'bags');
    expect(check({ ...ok, bag_dir: missing }, true)).toEqual({ bagDir: missing });
    expect(statSync(missing).isDirectory()).toBe(true);

    // The agent alone only watches: a missing folder is left for the agent to report.
    const watched = path.join(dir.path, 'watched');
    expect(check({ ...ok, bag_dir: watched }, false)).toEqual({ bagDir: watched });
    expect(existsSync(watched)).toBe(false);

    mkdirSync(path.join(dir.path, 'home'));
    expect(check({ ...ok, bag_dir: '~/bags' }, true, path.join(dir.path, 'home'))).toEqual({
      bagDir: path.join(dir.path, 'home', 'bags'),
    });

    const file = path.join(dir.path, 'a-file');
    writeFileSync(file, 'x');
    expect(errorOf(check({ ...ok, bag_dir: file }, true))).toBe(
      `bag_dir:=${file} is not a folder: give a folder, e.g. bag_dir:=/data/bags`,
    );
  });

  it('server_url must be given, with its scheme; the message says how to get a server to try it out', async () => {
    const dir = await createTempDir('launch-args');
    dirs.push(dir);
    const bagDir = dir.path;
    expect(errorOf(check({ ...ok, bag_dir: bagDir, server_url: '' }, true))).toBe(
      'server_url is empty: give the receiving server, e.g. bag_dir:=/data/bags server_url:=http://127.0.0.1:8080 ' +
        '(to try it out, run the bundled server on 127.0.0.1:8080: `node dist/server/cli/main.js` in the ' +
        'ros2-upload-agent checkout)',
    );
    expect(errorOf(check({ ...ok, bag_dir: bagDir, server_url: 'uploads.example.com:8080' }, true))).toBe(
      'server_url:=uploads.example.com:8080 must start with http:// or https://, ' +
        'e.g. server_url:=https://uploads.example.com:8080',
    );
    expect(check({ ...ok, bag_dir: bagDir, server_url: 'https://uploads.example.com' }, true)).toEqual({ bagDir });
  });

  it('max_bag_duration, drain_timeout and topics are checked', async () => {
    const dir = await createTempDir('launch-args');
    dirs.push(dir);
    const base = { ...ok, bag_dir: dir.path };
    const durations = ['0', '-1', 'abc', 'nan'];
    const drains = ['-1', 'soon'];
    const results = checkAll([
      ...durations.map((value) => ({ values: { ...base, max_bag_duration: value }, records: true })),
      ...drains.map((value) => ({ values: { ...base, drain_timeout: value }, records: true })),
    ]);
    for (const [i, value] of durations.entries())
      expect(errorOf(results[i]!)).toBe(
        `max_bag_duration:='${value}' must be a number of seconds more than 0, e.g. max_bag_duration:=60`,
      );
    for (const [i, value] of drains.entries())
      expect(errorOf(results[durations.length + i]!)).toBe(
        `drain_timeout:='${value}' must be a number of seconds at least 0, e.g. drain_timeout:=30`,
      );
    expect(errorOf(check({ ...base, drain_timeout: '4000' }, true))).toBe(
      'drain_timeout:=4000 is over 3600 s, e.g. drain_timeout:=30',
    );
    expect(check({ ...base, drain_timeout: '0' }, true)).toEqual({ bagDir: dir.path });
    expect(errorOf(check({ ...base, topics: ' ' }, true))).toBe(
      'topics is empty: give -a (every topic) or topics, e.g. topics:=/imu',
    );
  });

  it("the checker's drain_timeout bound is the agent option's", () => {
    const spec = agentOptions.specs.drainTimeout;
    expect(spec.max).toBe(3600);
    expect(spec.min).toBe(0);
    expect(read('upload_agent_arguments.py')).toContain('if drain > 3600:');
  });
});

describe('the launch files', () => {
  for (const file of ['record_and_upload.launch.xml', 'upload_agent.launch.xml']) {
    it(`${file} checks its arguments first, and leaves the drain its time before SIGTERM`, () => {
      const elements = allElements(parseXml(read(file)));
      const actions = elements.filter((e) => ['include', 'let', 'executable', 'node'].includes(e.name));
      const include = actions[0]!;
      expect(include.name, 'the check comes before anything starts').toBe('include');
      expect(include.attributes.file).toBe('$(find-pkg-share upload_agent_bringup)/launch/check_arguments.launch.py');
      const records = elements.some((e) => e.name === 'executable');
      const recordsArg = include.children.find((child) => child.name === 'arg' && child.attributes.name === 'records');
      expect(recordsArg?.attributes.value ?? 'false').toBe(records ? 'true' : 'false');

      const drain = elements.find((e) => e.name === 'arg' && e.attributes.name === 'drain_timeout');
      expect(Number(drain?.attributes.default)).toBe(agentOptions.specs.drainTimeout.default);
      const let_ = elements.find((e) => e.name === 'let' && e.attributes.name === 'sigterm_timeout');
      expect(let_?.attributes.value).toBe("$(eval '$(var drain_timeout) + 10')");
      // SIGTERM ends the drain; the stop after it must fit in the 5 s before SIGKILL.
      expect(10).toBeGreaterThan(STOP_DEADLINE_SECONDS);
      expect(STOP_DEADLINE_SECONDS).toBeLessThan(5);

      const node = elements.find((e) => e.name === 'node')!;
      const param = node.children.find((child) => child.name === 'param' && child.attributes.name === 'drain_timeout');
      expect(param?.attributes.value).toBe('$(var drain_timeout)');
    });
  }

  it('check_arguments.launch.py passes every argument the checker reads, and sets bag_dir back', () => {
    const wrapper = read('check_arguments.launch.py');
    const checker = read('upload_agent_arguments.py');
    const read_ = new Set([...checker.matchAll(/values(?:\.get\(|\[)'([a-z_]+)'/g)].map((match) => match[1]!));
    const names = /NAMES = \(([^)]*)\)/.exec(wrapper)?.[1];
    expect(names).toBeDefined();
    const passed = new Set([...names!.matchAll(/'([a-z_]+)'/g)].map((match) => match[1]!));
    expect([...passed].sort()).toEqual([...read_].sort());
    expect(wrapper).toContain("return [SetLaunchConfiguration('bag_dir', bag_dir)]");
  });

  it('record_and_upload.launch.py checks the same arguments, sets sigterm_timeout, uses --topics after Humble', () => {
    const python = read('record_and_upload.launch.py');
    expect(python).toContain('from upload_agent_arguments import check_arguments');
    expect(python).toContain("names = ('bag_dir', 'server_url', 'topics', 'max_bag_duration', 'drain_timeout')");
    expect(python).toContain('bag_dir = check_arguments({name: arg(name) for name in names}, records=True)');
    expect(python).toContain('STOP_SECONDS = 10');
    expect(python).toContain("SetLaunchConfiguration('sigterm_timeout', str(drain_timeout + STOP_SECONDS))");
    expect(python).toContain("'drain_timeout': drain_timeout,");
    expect(python).toContain("topics = ['--topics', *topics]");
  });
});
