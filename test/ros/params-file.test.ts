import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isAppliedByRclnodejs,
  nodeKeyMatches,
  readParamsFileOverrides,
} from '../../agent/ros/params-file-overrides.js';
import { startRosNode } from '../../agent/ros/index.js';
import { ParameterType } from '../../agent/ros/ros-seam.js';
import { isUploadError } from '../../common/errors/upload-error.js';
import { captureLogger } from './helpers/capture-logger.js';
import { FakeAgent } from './helpers/fake-agent.js';
import { FakeRos } from './helpers/fake-ros.js';
import { startFakeNode } from './helpers/start-fake-node.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ros-params-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function paramsFile(yaml: string): string {
  fileCount += 1;
  const file = path.join(dir, `params-${fileCount}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** A params file with one node key, as launch_ros writes them. */
function keyed(key: string, parameters: string): string {
  return paramsFile(
    `${key}:\n  ros__parameters:\n${parameters
      .trim()
      .split('\n')
      .map((line) => `    ${line.trim()}`)
      .join('\n')}\n`,
  );
}

describe('params-file node keys', () => {
  it('match the node as rcl does: /** any depth, * one name, a missing leading / added', () => {
    expect(nodeKeyMatches('/**', '/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/**', '/a/b/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/**/upload_agent', '/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/**/upload_agent', '/robot1/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/robot1/upload_agent', '/robot1/upload_agent')).toBe(true);
    expect(nodeKeyMatches('robot1/upload_agent', '/robot1/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/robot1/*', '/robot1/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/*/upload_agent', '/robot1/upload_agent')).toBe(true);
    expect(nodeKeyMatches('/robot2/upload_agent', '/robot1/upload_agent')).toBe(false);
    expect(nodeKeyMatches('/upload_agent', '/robot1/upload_agent')).toBe(false);
    expect(nodeKeyMatches('/*/upload_agent', '/upload_agent')).toBe(false);
    expect(nodeKeyMatches('/robot1/upload.agent', '/robot1/uploadXagent')).toBe(false);
    expect(isAppliedByRclnodejs('/**', 'upload_agent')).toBe(true);
    expect(isAppliedByRclnodejs('upload_agent', 'upload_agent')).toBe(true);
    expect(isAppliedByRclnodejs('/upload_agent', 'upload_agent')).toBe(false);
  });

  it('returns the entries rclnodejs ignores, nested names joined with dots, integers as BigInt', () => {
    const file = paramsFile(
      [
        '/**:',
        '  ros__parameters:',
        '    bandwidth_limit: 1',
        '/robot1/upload_agent:',
        '  ros__parameters:',
        '    bandwidth_limit: 2000000',
        '    upload_timeout: 60.0',
        '    qos_overrides:',
        '      depth: 3',
        '/robot2/upload_agent:',
        '  ros__parameters:',
        '    bandwidth_limit: 3',
      ].join('\n'),
    );
    const { entries, problems } = readParamsFileOverrides([file], {
      name: 'upload_agent',
      fullyQualifiedName: '/robot1/upload_agent',
    });
    expect(problems).toEqual([]);
    expect(entries.map(({ name, value, key }) => ({ name, value, key }))).toEqual([
      { name: 'bandwidth_limit', value: 2_000_000n, key: '/robot1/upload_agent' },
      { name: 'upload_timeout', value: 60, key: '/robot1/upload_agent' },
      { name: 'qos_overrides.depth', value: 3n, key: '/robot1/upload_agent' },
    ]);
  });
});

describe('parameters from ros2 launch arrive, whichever way the params file is keyed', () => {
  const cases: { key: string; ns?: string }[] = [
    { key: '/**' },
    { key: 'upload_agent' },
    { key: '/upload_agent' },
    { key: '/**/upload_agent' },
    { key: '/robot1/upload_agent', ns: '/robot1' },
    { key: '/**/upload_agent', ns: '/robot1' },
    { key: '/robot1/*', ns: '/robot1' },
    { key: '/**', ns: '/robot1' },
  ];
  for (const { key, ns } of cases) {
    it(`keyed ${key}${ns ? ` with the node in ${ns}` : ''}`, async () => {
      const file = keyed(
        key,
        'bandwidth_limit: 1000000\nserver_url: "http://127.0.0.1:8099"\nupload_timeout: 45\ninclude: ["*.txt"]',
      );
      const rosArgs = [...(ns ? ['-r', `__ns:=${ns}`] : []), '-r', '__node:=upload_agent', '--params-file', file];
      const run = await startFakeNode({ rosArgs });
      try {
        expect(run.rosSettings).toMatchObject({
          bandwidthLimit: 1_000_000,
          serverUrl: 'http://127.0.0.1:8099',
          uploadTimeout: 45,
          include: ['*.txt'],
        });
        expect(run.node.getParameter('bandwidth_limit')?.value).toBe(1_000_000n);
        expect(run.node.getParameter('server_url')?.value).toBe('http://127.0.0.1:8099');
        expect(run.node.getParameter('upload_timeout')).toEqual({
          name: 'upload_timeout',
          type: ParameterType.DOUBLE,
          value: 45,
        });
        expect(run.agent.status().bandwidthLimit).toBe(1_000_000);
      } finally {
        await run.handle.shutdown();
      }
    });
  }

  it('takes the command line launch_ros wrote for record_and_upload.launch.xml (captured on Humble)', async () => {
    // launch_ros 0.19 (Humble) gave the node these arguments for namespace:=robot1: one temporary
    // params file per <param name=... value=...>, keyed by the fully qualified name, after the
    // <param from=...> file.
    const shared = paramsFile('/**:\n  ros__parameters:\n    min_free_space: 5000000000\n    include: ["*.log"]\n');
    const url = paramsFile('/robot1/upload_agent:\n  ros__parameters:\n    server_url: http://127.0.0.1:9\n');
    const limit = paramsFile('/robot1/upload_agent:\n  ros__parameters:\n    bandwidth_limit: 3000000\n');
    const rosArgs = [
      '-r',
      '__node:=upload_agent',
      '-r',
      '__ns:=/robot1',
      '--params-file',
      shared,
      '--params-file',
      url,
      '--params-file',
      limit,
      '-r',
      'events/write_split:=/events/write_split',
    ];
    const run = await startFakeNode({ rosArgs });
    try {
      expect(run.node.fullyQualifiedName).toBe('/robot1/upload_agent');
      expect(run.rosSettings).toEqual({
        minFreeSpace: 5_000_000_000,
        include: ['*.log'],
        serverUrl: 'http://127.0.0.1:9',
        bandwidthLimit: 3_000_000,
      });
    } finally {
      await run.handle.shutdown();
    }
  });

  it('ignores entries keyed for another node, and warns about unknown names keyed to this one', async () => {
    const other = keyed('/robot2/upload_agent', 'bandwidth_limit: 7');
    const mine = keyed('/robot1/upload_agent', 'bandwith_limit: 7');
    const run = await startFakeNode({
      rosArgs: ['-r', '__ns:=/robot1', '--params-file', other, '--params-file', mine],
    });
    try {
      expect(run.rosSettings).toEqual({});
      expect(run.agent.status().bandwidthLimit).toBe(0);
      expect(run.warnings().map((line) => line.msg)).toContain(
        `bandwith_limit in params file ${mine} (key /robot1/upload_agent) ` +
          `is not a parameter of /robot1/upload_agent; ignored`,
      );
    } finally {
      await run.handle.shutdown();
    }
  });

  it('an entry keyed by the fully qualified name wins over /** and -p', async () => {
    const shared = keyed('/**', 'bandwidth_limit: 1\nmax_retries: 9');
    const specific = keyed('/robot1/upload_agent', 'bandwidth_limit: 2');
    const run = await startFakeNode({
      rosArgs: [
        '-r',
        '__ns:=/robot1',
        '--params-file',
        shared,
        '--params-file',
        specific,
        '-p',
        'bandwidth_limit:=3',
        '-p',
        'max_concurrent_uploads:=4',
      ],
    });
    try {
      expect(run.rosSettings).toEqual({ bandwidthLimit: 2, maxRetries: 9, maxConcurrentUploads: 4 });
    } finally {
      await run.handle.shutdown();
    }
  });

  it('a bad value stops startup with the parameter, the rule and the file, and takes ROS down', async () => {
    const bad = keyed('/upload_agent', 'max_concurrent_uploads: 0');
    const ros = new FakeRos();
    const { logger } = captureLogger();
    const agent = new FakeAgent();
    let created = false;
    const error = await startRosNode({
      binding: ros,
      argv: ['node', 'main.js', '--ros-args', '--params-file', bad],
      logger,
      signals: new EventEmitter(),
      exit: () => {},
      agent: async () => {
        created = true;
        return { agent, config: agent.config };
      },
    }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isUploadError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toBe(
      `Invalid ROS parameter from params file ${bad} (key /upload_agent): ` +
        `max_concurrent_uploads = 0 refused: must be at least 1`,
    );
    expect(created).toBe(false);
    expect(ros.node.destroyCount).toBe(1);
    expect(ros.shutdownCount).toBe(1);
  });

  it('applies ROS settings with setOption when given an agent that already runs', async () => {
    const file = keyed('/upload_agent', 'bandwidth_limit: 640000');
    const ros = new FakeRos();
    const { logger } = captureLogger();
    const agent = new FakeAgent();
    const handle = await startRosNode({
      binding: ros,
      argv: ['node', 'main.js', '--ros-args', '--params-file', file],
      logger,
      signals: new EventEmitter(),
      exit: () => {},
      agent,
      config: agent.config,
    });
    try {
      expect(agent.calls.setOption).toEqual([{ key: 'bandwidthLimit', value: 640_000 }]);
      expect(ros.node.getParameter('bandwidth_limit')?.value).toBe(640_000n);
    } finally {
      await handle.shutdown();
    }
  });
});
