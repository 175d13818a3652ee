import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentOptions } from '../../agent/app/agent-options.js';
import type { UploadQueueMessage } from '../../agent/ros/ros-messages.js';
import { ParameterSchema, parameterTypeOf } from '../../agent/ros/ros-parameters.js';
import { ParameterType } from '../../agent/ros/ros-seam.js';
import { rosNames } from '../../agent/ros/upload-agent-node.js';
import { defineOptions, option, type OptionSpec } from '../../common/config/index.js';
import { startFakeNode, type FakeNodeRun } from './helpers/start-fake-node.js';

const INT64_MAX = 2n ** 63n - 1n;

describe('parameters derived from the option set', () => {
  const schema = new ParameterSchema(agentOptions);

  it('declares one snake_case parameter per agent option, with type, description and range from its spec', async () => {
    const run = await startFakeNode();
    try {
      const expected = agentOptions.keys().filter((key) => (agentOptions.specs[key] as OptionSpec).ros !== false);
      expect(expected.length).toBeGreaterThan(20);
      expect([...run.node.declarations.keys()].sort()).toEqual(
        expected.map((key) => agentOptions.names(key).ros).sort(),
      );
      for (const key of expected) {
        const spec = agentOptions.specs[key] as OptionSpec;
        const declaration = run.node.declarations.get(agentOptions.names(key).ros)!;
        expect(declaration.name).toMatch(/^[a-z][a-z0-9_]*$/);
        expect(declaration.type).toBe(parameterTypeOf(spec));
        expect(declaration.description).toContain(spec.doc);
        expect(declaration.additionalConstraints.length).toBeGreaterThan(0);
        if ('min' in spec && spec.min !== undefined) expect(declaration.range).toBeDefined();
      }
      // The names the issue uses.
      expect(run.node.declarations.get('server_url')?.type).toBe(ParameterType.STRING);
      expect(run.node.declarations.get('watch_dir')?.type).toBe(ParameterType.STRING);
      expect(run.node.declarations.get('bandwidth_limit')).toMatchObject({
        type: ParameterType.INTEGER,
        value: 0n,
        range: { kind: 'integer', from: 0n, to: INT64_MAX },
      });
      expect(run.node.getParameter('bandwidth_limit')).toEqual({
        name: 'bandwidth_limit',
        type: ParameterType.INTEGER,
        value: 0n,
      });
      expect(run.node.declarations.get('max_concurrent_uploads')?.range).toEqual({
        kind: 'integer',
        from: 1n,
        to: 64n,
      });
      expect(run.node.declarations.get('upload_timeout')).toMatchObject({ type: ParameterType.DOUBLE, value: 300 });
    } finally {
      await run.handle.shutdown();
    }
  });

  it('maps every option kind to a ROS type, with ranges, constraints, and secrets hidden', () => {
    const set = defineOptions(
      {
        size: option.size({ doc: 'a size', default: 8, min: 1, max: 1024 }),
        seconds: option.duration({ doc: 'a duration', default: 2.5, min: 0.5 }),
        count: option.integer({ doc: 'a count', default: 3 }),
        ratio: option.number({ doc: 'a ratio', default: 0.5, min: 0, max: 1 }),
        flag: option.boolean({ doc: 'a flag', default: true }),
        url: option.string({ doc: 'a url', format: 'url' }),
        mode: option.enum({ doc: 'a mode', values: ['a', 'b'], default: 'a' }),
        globs: option.list({ doc: 'globs', default: ['*.mcap'] }),
        secretKey: option.string({ doc: 'a secret', secret: true }),
        cliOnly: option.boolean({ doc: 'not for ROS', default: false, ros: false }),
      },
      { envPrefix: 'T_' },
    );
    const local = new ParameterSchema(set);
    expect(local.options.map((o) => [o.name, o.type])).toEqual([
      ['size', ParameterType.INTEGER],
      ['seconds', ParameterType.DOUBLE],
      ['count', ParameterType.INTEGER],
      ['ratio', ParameterType.DOUBLE],
      ['flag', ParameterType.BOOL],
      ['url', ParameterType.STRING],
      ['mode', ParameterType.STRING],
      ['globs', ParameterType.STRING_ARRAY],
      ['secret_key', ParameterType.STRING],
    ]);
    const declare = (name: string, value: unknown) => local.declaration(local.byName(name)!, value);
    expect(declare('size', 8)).toMatchObject({ value: 8n, range: { kind: 'integer', from: 1n, to: 1024n } });
    expect(declare('size', 8).additionalConstraints).toContain('at most 1024 (1 KiB)');
    expect(declare('seconds', 2.5)).toMatchObject({
      value: 2.5,
      range: { kind: 'double', from: 0.5, to: Number.MAX_VALUE },
    });
    expect(declare('count', 3).range).toBeUndefined();
    expect(declare('ratio', 0.5).range).toEqual({ kind: 'double', from: 0, to: 1 });
    expect(declare('url', undefined).value).toBe('');
    expect(declare('mode', 'a').additionalConstraints).toContain('one of a, b');
    expect(declare('globs', ['*.mcap']).value).toEqual(['*.mcap']);
    expect(declare('secret_key', 'hunter2')).toMatchObject({ value: '', readOnly: true });
    expect(declare('secret_key', 'hunter2').description).toContain('reads back empty');
  });

  it('coerces unambiguous types and refuses the rest with a clear reason', () => {
    const coerced = (name: string, type: number, value: unknown) => schema.coerce({ name, type, value });
    expect(coerced('bandwidth_limit', ParameterType.STRING, '2MiB')).toEqual({
      name: 'bandwidth_limit',
      type: ParameterType.INTEGER,
      value: 2_097_152n,
    });
    expect(coerced('bandwidth_limit', ParameterType.DOUBLE, 1e6)).toEqual({
      name: 'bandwidth_limit',
      type: ParameterType.INTEGER,
      value: 1_000_000n,
    });
    expect(coerced('upload_timeout', ParameterType.INTEGER, 60n)).toEqual({
      name: 'upload_timeout',
      type: ParameterType.DOUBLE,
      value: 60,
    });
    expect(coerced('upload_timeout', ParameterType.STRING, '5m')).toEqual({
      name: 'upload_timeout',
      type: ParameterType.DOUBLE,
      value: 300,
    });
    expect(coerced('include', ParameterType.STRING, '*.mcap, *.db3')).toEqual({
      name: 'include',
      type: ParameterType.STRING_ARRAY,
      value: ['*.mcap', '*.db3'],
    });
    expect(coerced('transfer_compression', ParameterType.STRING, 'yes')).toEqual({
      name: 'transfer_compression',
      type: ParameterType.BOOL,
      value: true,
    });
    expect(coerced('server_url', ParameterType.INTEGER, 5n)).toEqual({
      name: 'server_url',
      type: ParameterType.STRING,
      value: '5',
    });
    // Not ours, or not convertible: unchanged (check() refuses it).
    expect(coerced('use_sim_time', ParameterType.STRING, 'x')).toEqual({
      name: 'use_sim_time',
      type: ParameterType.STRING,
      value: 'x',
    });
    expect(coerced('bandwidth_limit', ParameterType.DOUBLE, 1.5)).toEqual({
      name: 'bandwidth_limit',
      type: ParameterType.DOUBLE,
      value: 1.5,
    });

    const refused = (name: string, type: number, value: unknown) => {
      const result = schema.check({ name, type, value });
      if (result.ok) throw new Error(`${name}=${String(value)} was accepted`);
      return result.reason;
    };
    expect(refused('bandwidth_limit', ParameterType.DOUBLE, 1.5)).toBe(
      'bandwidth_limit must be an integer number of bytes (or a string with a unit, such as 2MiB), not a double (1.5)',
    );
    expect(refused('bandwidth_limit', ParameterType.INTEGER, -5n)).toBe(
      'bandwidth_limit = -5 refused: must be at least 0 B',
    );
    expect(refused('max_concurrent_uploads', ParameterType.INTEGER, 100n)).toBe(
      'max_concurrent_uploads = 100 refused: must be at most 64',
    );
    expect(refused('server_url', ParameterType.STRING, 'ftp://x')).toBe(
      'server_url = "ftp://x" refused: expected an http:// or https:// URL, not ftp:',
    );
    expect(refused('after_upload', ParameterType.STRING, 'shred')).toBe(
      'after_upload = "shred" refused: expected one of keep, delete, move',
    );
    expect(refused('token', ParameterType.INTEGER, 5n)).toBe('token must be a string, not an integer');
    expect(refused('bandwidth_limit', ParameterType.NOT_SET, undefined)).toBe(
      'bandwidth_limit cannot be deleted or unset (set it to another value instead)',
    );
    expect(schema.check({ name: 'use_sim_time', type: ParameterType.BOOL, value: true })).toEqual({
      ok: true,
      option: undefined,
      value: true,
    });
  });
});

describe('ros2 param set on the running node', () => {
  let run: FakeNodeRun;

  beforeEach(async () => {
    run = await startFakeNode();
  });

  afterEach(async () => {
    await run.handle.shutdown();
  });

  it('bandwidth_limit takes effect at once and shows on ~/queue', () => {
    const { node, agent } = run;
    expect(node.setParameters([{ name: 'bandwidth_limit', type: ParameterType.INTEGER, value: 1_000_000n }])).toEqual({
      successful: true,
      reason: '',
    });
    expect(agent.calls.setOption).toEqual([{ key: 'bandwidthLimit', value: 1_000_000 }]);
    expect(agent.status().bandwidthLimit).toBe(1_000_000);
    expect(node.getParameter('bandwidth_limit')?.value).toBe(1_000_000n);
    node.tick();
    expect(node.messages<UploadQueueMessage>(rosNames.queue).at(-1)!.bandwidth_limit).toBe(1_000_000n);

    // With a unit, as a string: stored as the integer it means.
    expect(
      node.setParameters([{ name: 'bandwidth_limit', type: ParameterType.STRING, value: '2MiB' }]).successful,
    ).toBe(true);
    expect(node.getParameter('bandwidth_limit')).toEqual({
      name: 'bandwidth_limit',
      type: ParameterType.INTEGER,
      value: 2_097_152n,
    });
    expect(agent.status().bandwidthLimit).toBe(2_097_152);
  });

  it('a refused value keeps the old one, in ROS and in the agent, with the reason ros2 param set prints', () => {
    const { node, agent } = run;
    node.setParameters([{ name: 'bandwidth_limit', type: ParameterType.INTEGER, value: 500_000n }]);
    const result = node.setParameters([{ name: 'bandwidth_limit', type: ParameterType.INTEGER, value: -1n }]);
    expect(result).toEqual({ successful: false, reason: 'bandwidth_limit = -1 refused: must be at least 0 B' });
    expect(node.getParameter('bandwidth_limit')?.value).toBe(500_000n);
    expect(agent.status().bandwidthLimit).toBe(500_000);

    const wrongType = node.setParameters([{ name: 'bandwidth_limit', type: ParameterType.STRING, value: 'fast' }]);
    expect(wrongType.successful).toBe(false);
    expect(wrongType.reason).toBe(
      'bandwidth_limit must be an integer number of bytes (or ' +
        'a string with a unit, such as 2MiB), not a string ("fast")',
    );
    expect(node.getParameter('bandwidth_limit')?.value).toBe(500_000n);
    expect(run.warnings().some((line) => line.reason === wrongType.reason)).toBe(true);
  });

  it("a setting the agent cannot change at run time is refused with the agent's reason, and a set is atomic", () => {
    const { node, agent } = run;
    const result = node.setParameters([
      { name: 'bandwidth_limit', type: ParameterType.INTEGER, value: 123_456n },
      { name: 'state_dir', type: ParameterType.STRING, value: '/tmp/elsewhere' },
    ]);
    expect(result.successful).toBe(false);
    expect(result.reason).toBe('state_dir: stateDir cannot change while the agent runs; restart it');
    // bandwidth_limit was applied, then put back.
    expect(agent.calls.setOption.map((call) => call.key)).toEqual(['bandwidthLimit', 'stateDir', 'bandwidthLimit']);
    expect(agent.status().bandwidthLimit).toBe(0);
    expect(node.getParameter('bandwidth_limit')?.value).toBe(0n);
  });

  it('the token is declared but never readable, and cannot be set at run time', () => {
    const { node } = run;
    expect(node.getParameter('token')).toEqual({ name: 'token', type: ParameterType.STRING, value: '' });
    expect(node.setParameters([{ name: 'token', type: ParameterType.STRING, value: 'abc' }])).toEqual({
      successful: false,
      reason: 'Parameter token is readonly',
    });
  });

  it('the token file is a parameter (token_file): declared, readable, and changeable at run time', () => {
    const { node, agent } = run;
    expect(node.declarations.get('token_file')?.type).toBe(ParameterType.STRING);
    expect(
      node.setParameters([{ name: 'token_file', type: ParameterType.STRING, value: '/etc/ros2-upload-agent/token' }])
        .successful,
    ).toBe(true);
    expect(node.getParameter('token_file')?.value).toBe('/etc/ros2-upload-agent/token');
    expect(agent.config.tokenFile).toBe('/etc/ros2-upload-agent/token');
  });

  it('durations accept an integer, as `ros2 param set ... upload_timeout 60` sends', () => {
    const { node, agent } = run;
    expect(node.setParameters([{ name: 'upload_timeout', type: ParameterType.INTEGER, value: 60n }]).successful).toBe(
      true,
    );
    expect(node.getParameter('upload_timeout')).toEqual({
      name: 'upload_timeout',
      type: ParameterType.DOUBLE,
      value: 60,
    });
    expect(agent.config.uploadTimeout).toBe(60);
  });
});
