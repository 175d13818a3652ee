import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defineOptions,
  option,
  parseCommandLine,
  readConfigFile,
  parseSize,
  parseDuration,
  formatSize,
} from '../../common/config/index.js';
import { isUploadError } from '../../common/errors/upload-error.js';

const set = defineOptions(
  {
    port: option.integer({
      doc: 'TCP port',
      default: 8080,
      min: 0,
      max: 65535,
      aliases: [{ env: 'PORT', deprecated: true }],
    }),
    chunkSize: option.size({ doc: 'chunk size', default: 8 * 1024 * 1024, min: 1024 }),
    stalledTimeout: option.duration({ doc: 'stall timeout', default: 60, min: 0.01 }),
    afterUpload: option.enum({ doc: 'policy', values: ['keep', 'delete', 'move'], default: 'keep' }),
    verbose: option.boolean({ doc: 'chatty', default: false }),
    token: option.string({ doc: 'bearer token', secret: true }),
    serverUrl: option.string({ doc: 'server', format: 'url', aliases: [{ flag: 'server' }, { key: 'uploadUrl' }] }),
    include: option.list({ doc: 'globs', default: [] }),
  },
  { envPrefix: 'TEST_' },
);

describe('units', () => {
  it('parses IEC and SI sizes and rejects nonsense', () => {
    expect(parseSize('2MiB')).toBe(2 * 1024 * 1024);
    expect(parseSize('500k')).toBe(500_000);
    expect(parseSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('2XB')).toBeUndefined();
    expect(parseSize('-1')).toBeUndefined();
    expect(formatSize(8 * 1024 * 1024)).toBe('8 MiB');
  });
  it('parses durations in seconds', () => {
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('500ms')).toBe(0.5);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('2.5')).toBe(2.5);
    expect(parseDuration('5 parsecs')).toBeUndefined();
  });
});

describe('option sets', () => {
  it('derives flag, env and ROS names from one key', () => {
    expect(set.names('stalledTimeout')).toEqual({
      key: 'stalledTimeout',
      flag: '--stalled-timeout',
      env: 'TEST_STALLED_TIMEOUT',
      ros: 'stalled_timeout',
    });
    expect(set.names('port').env).toBe('TEST_PORT');
    expect(set.names('serverUrl')).toEqual({
      key: 'serverUrl',
      flag: '--server-url',
      env: 'TEST_SERVER_URL',
      ros: 'server_url',
    });
  });

  it('layers defaults, file, env and command line', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'chunk_size: 1MiB\nafter-upload: move\nport: 9000\n');
    const fromFile = readConfigFile(set, file);
    const fromEnv = set.fromEnv({ PORT: '9100', TEST_VERBOSE: 'yes' });
    const cli = parseCommandLine(
      set,
      ['--stalled-timeout', '2m', '--no-verbose', '--include', 'a,b', '--include', 'c', 'x'],
      { help: { type: 'boolean' } },
    );
    const config = set.resolve(fromFile, fromEnv, cli.values);
    expect(config).toEqual({
      port: 9100,
      chunkSize: 1024 * 1024,
      stalledTimeout: 120,
      afterUpload: 'move',
      verbose: false,
      token: undefined,
      serverUrl: undefined,
      include: ['a', 'b', 'c'],
    });
    expect(cli.positionals).toEqual(['x']);
  });

  it('names the option, the source and the value on a bad value', () => {
    expect(() => set.fromEnv({ PORT: 'abc' })).toThrowError(
      /port \(--port, TEST_PORT\) from environment variable PORT: "abc": expected an integer/,
    );
    expect(() => parseCommandLine(set, ['--chunk-size', '12'])).toThrowError(
      /chunkSize .* "12": must be at least 1 KiB/,
    );
    expect(() => set.parse({ serverUrl: 'ftp://x' })).toThrowError(/expected an http/);
    expect(() => set.parse({ afterUpload: 'burn' })).toThrowError(/expected one of keep, delete, move/);
  });

  it('never echoes a secret', () => {
    const attempt = (): unknown => set.parse({ token: 42 });
    expect(attempt).toThrowError(/\(value hidden\)/);
    expect(attempt).not.toThrowError(/42/);
  });

  it('refuses unknown flags and keys with a code', () => {
    try {
      parseCommandLine(set, ['--bogus']);
      expect.unreachable();
    } catch (error) {
      expect(isUploadError(error, 'CONFIG_UNKNOWN_OPTION')).toBe(true);
      expect((error as Error).message).toContain('--bogus');
    }
    expect(() => set.parse({ nope: 1 }, 'config file x.yaml')).toThrowError(
      'Unknown option "nope" in config file x.yaml',
    );
  });

  it('accepts aliases (a deprecated one with a note), and prefers the derived name when both are set', () => {
    const notes: string[] = [];
    expect(set.fromEnv({ PORT: '81' }, { notes })).toEqual({ port: 81 });
    expect(notes).toEqual(['PORT is an old name: use TEST_PORT']);
    const both: string[] = [];
    expect(set.fromEnv({ PORT: '81', TEST_PORT: '82' }, { notes: both })).toEqual({ port: 82 });
    expect(both).toEqual(['PORT is ignored: TEST_PORT is set too, and wins']);
    expect(set.parse({ upload_url: 'http://h:1' })).toEqual({ serverUrl: 'http://h:1' });
    expect(parseCommandLine(set, ['--server', 'http://h:2']).values).toEqual({ serverUrl: 'http://h:2' });
    expect(parseCommandLine(set, ['--server-url', 'http://h:3']).values).toEqual({ serverUrl: 'http://h:3' });
  });

  it('refuses an unknown variable with the prefix, and suggests the closest name', () => {
    expect(() => set.fromEnv({ TEST_SERVER: 'http://h' })).toThrowError(
      /^Unknown environment variable TEST_SERVER \(did you mean TEST_SERVER_URL\?\)/,
    );
    expect(() => set.fromEnv({ TEST_CHUNKSIZE: '1' })).toThrowError(/did you mean TEST_CHUNK_SIZE\?/);
    expect(() => set.fromEnv({ TEST_CONFIG: 'x.yaml' }, { otherNames: ['TEST_CONFIG'] })).not.toThrow();
    expect(() => set.fromEnv({ OTHER_THING: '1' })).not.toThrow();
    expect(() => parseCommandLine(set, ['--chunksize', '2k'])).toThrowError(/did you mean --chunk-size\?/);
    expect(() => set.parse({ stalledTimeot: 1 }, 'config file x.yaml')).toThrowError(/did you mean stalledTimeout\?/);
  });

  it('accepts BigInt from ROS integer parameters', () => {
    expect(set.parse({ chunk_size: 2048n, port: 81n }, 'ROS parameter')).toEqual({ chunkSize: 2048, port: 81 });
  });
});
