import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { agentOptions } from '../../agent/app/agent-options.js';
import { ParameterSchema, rosParameterFromValue } from '../../agent/ros/ros-parameters.js';
import { loadMessage } from './helpers/ros-idl.js';
import { allElements, parseXml, type XmlElement } from './helpers/mini-xml.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
};
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');
const schema = new ParameterSchema(agentOptions);
/** The two ROS 2 packages, each in a folder named after it (as rosbag2 lays out its packages). */
const MSGS = 'msgs/upload_agent_msgs';
const BRINGUP = 'launch/upload_agent_bringup';

/** REP 149 (package format 3) element order and vocabulary. */
const PACKAGE_CHILDREN = new Set([
  'name',
  'version',
  'description',
  'maintainer',
  'license',
  'url',
  'author',
  'build_depend',
  'build_export_depend',
  'buildtool_depend',
  'buildtool_export_depend',
  'exec_depend',
  'depend',
  'doc_depend',
  'test_depend',
  'conflict',
  'replace',
  'group_depend',
  'member_of_group',
  'export',
]);

/** The problems of a package.xml against the package format 3 rules that can be checked offline. */
function packageProblems(xml: XmlElement): string[] {
  const problems: string[] = [];
  const children = (name: string) => xml.children.filter((child) => child.name === name);
  const one = (name: string): string => {
    const found = children(name);
    if (found.length !== 1) problems.push(`exactly one <${name}> is required, found ${found.length}`);
    return found[0]?.text ?? '';
  };
  if (xml.name !== 'package') problems.push(`the root must be <package>, not <${xml.name}>`);
  if (xml.attributes.format !== '3') problems.push('format="3" is required');
  for (const child of xml.children)
    if (!PACKAGE_CHILDREN.has(child.name)) problems.push(`<${child.name}> is not a package format 3 element`);
  const order = xml.children.slice(0, 3).map((child) => child.name);
  if (order.join() !== 'name,version,description')
    problems.push(`name, version and description must come first, in that order (got ${order.join(', ')})`);
  const name = one('name');
  if (!/^[a-z](?:[a-z0-9]|_(?!_))*[a-z0-9]$/.test(name))
    problems.push(
      `name "${name}" must be lower case letters, digits and single underscores, starting with a letter (REP 144)`,
    );
  if (!/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/.test(one('version'))) problems.push('version must be x.y.z');
  if (one('description').length < 10) problems.push('description must say what the package is');
  const maintainers = children('maintainer');
  if (maintainers.length === 0) problems.push('at least one <maintainer> is required');
  for (const maintainer of maintainers) {
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(maintainer.attributes.email ?? ''))
      problems.push('a maintainer needs an email attribute');
    if (!maintainer.text) problems.push('a maintainer needs a name');
  }
  if (children('license').length === 0 || children('license').some((license) => !license.text))
    problems.push('at least one non-empty <license> is required');
  for (const dependency of xml.children.filter((child) => child.name.endsWith('depend'))) {
    if (!/^[a-z][a-z0-9_]*$/.test(dependency.text))
      problems.push(`<${dependency.name}> must name a package, got "${dependency.text}"`);
  }
  const buildType = children('export')[0]
    ?.children.filter((child) => child.name === 'build_type')
    .map((child) => child.text);
  if (buildType?.join() !== 'ament_cmake')
    problems.push('<export><build_type>ament_cmake</build_type></export> is required');
  if (!children('buildtool_depend').some((dep) => dep.text === 'ament_cmake'))
    problems.push('<buildtool_depend>ament_cmake</buildtool_depend> is required');
  return problems;
}

const dependencies = (xml: XmlElement, ...kinds: string[]): string[] =>
  xml.children.filter((child) => kinds.includes(child.name)).map((child) => child.text);

describe('package.xml files (package format 3)', () => {
  const msgs = parseXml(read(`${MSGS}/package.xml`));
  const bringup = parseXml(read(`${BRINGUP}/package.xml`));

  it('the checker catches broken packages', () => {
    const broken = parseXml(
      '<package format="2"><version>1.0</version><name>Bad__Name</name>' +
        '<description>x</description><maintainer>nobody</maintainer><foo/><export/></package>',
    );
    expect(packageProblems(broken)).toEqual(
      expect.arrayContaining([
        'format="3" is required',
        '<foo> is not a package format 3 element',
        'name, version and description must come first, in that order (got version, name, description)',
        'name "Bad__Name" must be lower case letters, digits and single underscores, starting with a letter (REP 144)',
        'version must be x.y.z',
        'description must say what the package is',
        'a maintainer needs an email attribute',
        'at least one non-empty <license> is required',
        '<export><build_type>ament_cmake</build_type></export> is required',
      ]),
    );
    expect(() => parseXml('<package><name>x</package>')).toThrow('</package> does not close <name>');
    expect(() => parseXml('<a b=c/>')).toThrow('malformed tag');
  });

  it('msgs/upload_agent_msgs is upload_agent_msgs, an interface package with every dependency named', () => {
    expect(packageProblems(msgs)).toEqual([]);
    expect(msgs.children.find((child) => child.name === 'name')?.text).toBe('upload_agent_msgs');
    expect(dependencies(msgs, 'buildtool_depend')).toContain('rosidl_default_generators');
    expect(dependencies(msgs, 'exec_depend', 'depend')).toContain('rosidl_default_runtime');
    expect(dependencies(msgs, 'member_of_group')).toEqual(['rosidl_interface_packages']);
    // Every package a field type comes from is a dependency (build and run).
    const used = new Set<string>();
    for (const file of readdirSync(path.join(root, MSGS, 'msg'))) {
      for (const field of loadMessage(`upload_agent_msgs/msg/${file.replace(/\.msg$/, '')}`).fields) {
        const pkg = field.type.split('/')[0]!;
        if (field.type.includes('/') && pkg !== 'upload_agent_msgs') used.add(pkg);
      }
    }
    expect([...used]).toEqual(['builtin_interfaces']);
    for (const pkg of used) expect(dependencies(msgs, 'depend')).toContain(pkg);
    const cmake = read(`${MSGS}/CMakeLists.txt`);
    expect(cmake).toMatch(/project\(upload_agent_msgs\)/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a CMake variable, checked literally in CMakeLists.txt
    expect(cmake).toContain('rosidl_generate_interfaces(${PROJECT_NAME}');
    for (const pkg of used) expect(cmake).toContain(`find_package(${pkg} REQUIRED)`);
  });

  it('launch/upload_agent_bringup is upload_agent_bringup, depending on what its launch files and node use', () => {
    expect(packageProblems(bringup)).toEqual([]);
    expect(bringup.children.find((child) => child.name === 'name')?.text).toBe('upload_agent_bringup');
    expect(dependencies(bringup, 'exec_depend')).toEqual(
      expect.arrayContaining([
        'upload_agent_msgs',
        'launch_ros',
        'launch_xml',
        'ros2launch',
        'ros2bag',
        'rosbag2_interfaces',
        'std_srvs',
        'std_msgs',
        'diagnostic_msgs',
      ]),
    );
    expect(read(`${BRINGUP}/CMakeLists.txt`)).toMatch(/project\(upload_agent_bringup\)/);
  });

  it('each package lives in a folder named after it, and package.json ships both', () => {
    const packageFolders = ['msgs', 'launch'].flatMap((top) =>
      readdirSync(path.join(root, top), { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && existsSync(path.join(root, top, entry.name, 'package.xml')))
        .map((entry) => `${top}/${entry.name}`),
    );
    expect(packageFolders.sort()).toEqual([BRINGUP, MSGS]);
    for (const folder of packageFolders) {
      expect(parseXml(read(`${folder}/package.xml`)).children.find((child) => child.name === 'name')?.text).toBe(
        path.basename(folder),
      );
    }
    // Nothing left at the old places (a package.xml there would make colcon find a package twice).
    expect(existsSync(path.join(root, 'msgs/package.xml'))).toBe(false);
    expect(existsSync(path.join(root, 'launch/package.xml'))).toBe(false);
    expect(packageJson.files).toEqual(expect.arrayContaining([MSGS, BRINGUP]));
  });

  it('both packages carry the version of package.json', () => {
    for (const xml of [msgs, bringup])
      expect(xml.children.find((child) => child.name === 'version')?.text).toBe(packageJson.version);
  });
});

describe('launch files', () => {
  const cmake = read(`${BRINGUP}/CMakeLists.txt`);
  /** Executables CMake installs into lib/upload_agent_bringup. */
  const shipped = [
    ...cmake.matchAll(/install\(PROGRAMS\s+"?([^\s")]+)"?\s+DESTINATION\s+lib\/\$\{PROJECT_NAME\}\)/g),
  ].map((match) => path.basename(match[1]!));
  const launchFiles = readdirSync(path.join(root, BRINGUP, 'launch')).filter((file) => file.endsWith('.launch.xml'));

  it('CMake installs the upload_agent wrapper, the launch files and the example parameters', () => {
    expect(shipped).toEqual(['upload_agent']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a CMake variable, checked literally in CMakeLists.txt
    expect(cmake).toContain('configure_file(scripts/upload_agent.in "${CMAKE_CURRENT_BINARY_DIR}/upload_agent" @ONLY)');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a CMake variable, checked literally in CMakeLists.txt
    expect(cmake).toContain('install(DIRECTORY launch config DESTINATION share/${PROJECT_NAME})');
    expect(launchFiles.sort()).toEqual(['record_and_upload.launch.xml', 'upload_agent.launch.xml']);
  });

  it('CMake points the wrapper at the repository root (where package.json and dist/ are)', () => {
    const relative =
      /get_filename_component\(UPLOAD_AGENT_ROOT "\$\{CMAKE_CURRENT_SOURCE_DIR\}\/([^"]*)" REALPATH\)/.exec(cmake)?.[1];
    expect(relative, 'UPLOAD_AGENT_ROOT is set from CMAKE_CURRENT_SOURCE_DIR').toBeDefined();
    expect(path.resolve(root, BRINGUP, relative!)).toBe(path.resolve(root));
  });

  for (const file of ['record_and_upload.launch.xml', 'upload_agent.launch.xml']) {
    it(`${file} parses, names only executables we ship, and sets only real parameters`, () => {
      const xml = parseXml(read(`${BRINGUP}/launch/${file}`));
      expect(xml.name).toBe('launch');
      const elements = allElements(xml);
      const declared = new Map(
        elements.filter((e) => e.name === 'arg').map((e) => [e.attributes.name!, e.attributes.default]),
      );
      const used = new Set(
        [...read(`${BRINGUP}/launch/${file}`).matchAll(/\$\(var ([a-z_]+)\)/g)].map((match) => match[1]!),
      );
      for (const name of used) expect(declared.has(name), `$(var ${name}) is declared`).toBe(true);

      const nodes = elements.filter((e) => e.name === 'node');
      expect(nodes).toHaveLength(1);
      for (const node of nodes) {
        expect(node.attributes.pkg).toBe('upload_agent_bringup');
        expect(shipped).toContain(node.attributes.exec);
        expect(node.attributes.name).toBe('upload_agent');
        expect(node.attributes.args).toBe('watch $(var bag_dir)');
        for (const param of node.children.filter((child) => child.name === 'param' && child.attributes.name)) {
          expect(schema.byName(param.attributes.name!), `parameter ${param.attributes.name}`).toBeDefined();
        }
        expect(
          node.children.some((child) => child.name === 'param' && child.attributes.from === '$(var params_file)'),
        ).toBe(true);
        expect(node.children.find((child) => child.name === 'remap')?.attributes.from).toBe('events/write_split');
      }
      for (const executable of elements.filter((e) => e.name === 'executable')) {
        expect(executable.attributes.cmd).toMatch(/^ros2 bag record /);
      }
    });
  }

  it('record_and_upload takes the arguments the issue lists, with their defaults, in XML and Python', () => {
    const xml = allElements(parseXml(read(`${BRINGUP}/launch/record_and_upload.launch.xml`)));
    const args = Object.fromEntries(
      xml.filter((e) => e.name === 'arg').map((e) => [e.attributes.name!, e.attributes.default ?? null]),
    );
    expect(args).toMatchObject({
      bag_dir: null,
      server_url: null,
      topics: '-a',
      max_bag_duration: '60',
      bandwidth_limit: '0',
      namespace: '',
    });
    const recorder = xml.find((e) => e.name === 'executable')!;
    expect(recorder.attributes.cmd).toBe('ros2 bag record $(var topics) --max-bag-duration $(var max_bag_duration)');
    expect(recorder.attributes.cwd).toBe('$(var bag_dir)');

    const python = read(`${BRINGUP}/launch/record_and_upload.launch.py`);
    const pyArgs = Object.fromEntries(
      [
        ...python.matchAll(
          /DeclareLaunchArgument\(\s*'([a-z_]+)'(?:,\s*default_value=('[^']*'|os\.path\.join\([^)]*\)))?/g,
        ),
      ].map((m) => [m[1]!, m[2] ?? null]),
    );
    expect(pyArgs).toMatchObject({
      bag_dir: null,
      server_url: null,
      topics: "'-a'",
      max_bag_duration: "'60'",
      bandwidth_limit: "'0'",
      namespace: "''",
    });
    expect(Object.keys(pyArgs).sort()).toEqual(Object.keys(args).sort());
    expect(python).toContain("package='upload_agent_bringup'");
    expect(python).toContain("executable='upload_agent'");
    expect(python).toContain("'ros2', 'bag', 'record'");
    expect(python).toContain("remappings=[('events/write_split', '/events/write_split')]");
  });

  it('the example parameters are keyed /** and name only real parameters with valid values', () => {
    const data = parseYaml(read(`${BRINGUP}/config/upload_agent.params.yaml`), { intAsBigInt: true }) as Record<
      string,
      { ros__parameters: Record<string, unknown> }
    >;
    expect(Object.keys(data)).toEqual(['/**']);
    const entries = Object.entries(data['/**']!.ros__parameters);
    expect(entries.length).toBeGreaterThan(0);
    for (const [name, value] of entries) {
      const checked = schema.check(schema.coerce(rosParameterFromValue(name, value)));
      expect(checked, name).toMatchObject({ ok: true });
      expect(checked.ok && checked.option?.name).toBe(name);
    }
  });
});

describe('the upload_agent wrapper', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'upload-agent-wrapper-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const template = read(`${BRINGUP}/scripts/upload_agent.in`);
  const configure = (agentRoot: string): string => {
    const file = path.join(dir, `upload_agent-${path.basename(agentRoot) || 'root'}`);
    writeFileSync(file, template.replaceAll('@UPLOAD_AGENT_ROOT@', agentRoot));
    chmodSync(file, 0o755);
    return file;
  };

  it('runs the program that package.json ships as ros2-upload-agent, in ROS mode', () => {
    expect(template.startsWith('#!/bin/sh\n')).toBe(true);
    expect(statSync(path.join(root, BRINGUP, 'scripts/upload_agent.in')).mode & 0o111).not.toBe(0);
    expect(template).toContain(`main="$root/${packageJson.bin['ros2-upload-agent']}"`);
    expect(template).toContain('exec "$node" "$main" --ros "$@"');
    execFileSync('sh', ['-n', path.join(root, BRINGUP, 'scripts/upload_agent.in')]);
  });

  it('passes its arguments to the built agent', () => {
    const wrapper = configure(root.replace(/\/$/, ''));
    const result = spawnSync(wrapper, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, UPLOAD_AGENT_NODE: process.execPath },
    });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(packageJson.version);
    expect(result.status).toBe(0);
  });

  it('says what is missing when the agent cannot be found', () => {
    const wrapper = configure(path.join(dir, 'no-such-checkout'));
    const result = spawnSync(wrapper, ['watch', '/data'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain(
      `upload_agent: cannot find the agent: ` +
        `${path.join(dir, 'no-such-checkout')}/dist/agent/cli/main.js does not exist (run \`npm install\``,
    );
  });
});
