import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UploadError, errorCodes, type UploadErrorCode } from '../../common/errors/upload-error.js';
import { agentOptions } from '../../agent/app/agent-options.js';
import { exitCodeOf, exitCodes } from '../../agent/cli/exit-codes.js';
import { helpText } from '../../agent/cli/help-text.js';
import { parseInvocation } from '../../agent/cli/invocation.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { plainEnv, REPO_ROOT, runAgent, spawnAgent, type SpawnedAgent } from './support/spawn-agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function temp(): Promise<TempDir> {
  const dir = await createTempDir('cli');
  cleanups.push(() => dir.remove());
  return dir;
}

function thrown(fn: () => unknown): UploadError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UploadError) return error;
    throw error;
  }
  throw new Error('expected an UploadError');
}

describe('parsing the command line', { timeout: 180_000 }, () => {
  it('layers defaults, config file (agent: section), environment and flags; drops --ros-args sections', async () => {
    const dir = await temp();
    const config = path.join(dir.path, 'agent.yaml');
    writeFileSync(
      config,
      'agent:\n  chunk_size: 1MiB\n  settle-time: 2m\n  bandwidthLimit: 500k\nserver:\n  port: 9000\n',
    );
    const invocation = parseInvocation(
      [
        'watch',
        './rec',
        '--config',
        config,
        '--bandwidth-limit',
        '2MiB',
        '--ros-args',
        '-p',
        'bandwidth_limit:=1',
        '--',
        '--after-upload',
        'delete',
        '--no-ros',
      ],
      { UPLOAD_AGENT_SETTLE_TIME: '45s', UPLOAD_AGENT_SERVER_URL: 'http://127.0.0.1:1234' },
    );
    expect(invocation.command).toBe('watch');
    expect(invocation.config.watchDir).toBe('./rec');
    expect(invocation.config.chunkSize).toBe(1024 * 1024);
    expect(invocation.config.settleTime).toBe(45);
    expect(invocation.config.bandwidthLimit).toBe(2 * 1024 * 1024);
    expect(invocation.config.afterUpload).toBe('delete');
    expect(invocation.serverGiven).toBe(true);
    expect(invocation.ros).toBe(false);
    expect(parseInvocation(['status'], {}).serverGiven).toBe(false);
    // JSON works too (YAML is a superset).
    const json = path.join(dir.path, 'agent.json');
    writeFileSync(json, JSON.stringify({ quietPeriod: '500ms', include: ['*.json'] }));
    const fromJson = parseInvocation(['upload', 'a', 'b', '-c', json], {});
    expect(fromJson.config.quietPeriod).toBe(0.5);
    expect(fromJson.config.include).toEqual(['*.json']);
    expect(fromJson.paths).toEqual(['a', 'b']);
  });

  it('runs `watch` on the configured folder when started without a command (ros2 run, launch files)', () => {
    expect(parseInvocation([], { UPLOAD_AGENT_WATCH_DIR: '/data/bags' }).command).toBe('watch');
    expect(thrown(() => parseInvocation([], {})).code).toBe('USAGE');
  });

  it('names the problem in one line', () => {
    expect(thrown(() => parseInvocation(['watch', 'x', '--chunk-size', '2XB'], {})).message).toMatch(
      /chunkSize \(--chunk-size.*"2XB".*expected a size/,
    );
    expect(thrown(() => parseInvocation(['watch'], {})).message).toMatch(/watch needs a folder/);
    expect(thrown(() => parseInvocation(['watch', 'a', 'b'], {})).message).toMatch(/one folder/);
    expect(thrown(() => parseInvocation(['upload'], {})).message).toMatch(/at least one file/);
    expect(thrown(() => parseInvocation(['status', 'x'], {})).message).toMatch(/takes no arguments/);
    expect(thrown(() => parseInvocation(['watch', 'x'], { UPLOAD_AGENT_AFTER_UPLOAD: 'shred' })).message).toMatch(
      /UPLOAD_AGENT_AFTER_UPLOAD.*keep, delete, move/,
    );
  });

  it('maps every error code to one exit code, defined in one place', () => {
    for (const code of Object.keys(errorCodes) as UploadErrorCode[]) {
      expect(Object.values(exitCodes)).toContain(exitCodeOf(new UploadError(code, 'x')));
    }
    expect(exitCodeOf(new Error('boom'))).toBe(exitCodes.INTERNAL);
    expect(
      new Set([
        exitCodes.USAGE,
        exitCodes.NO_INPUT,
        exitCodes.STATE_DIR,
        exitCodes.LOCKED,
        exitCodes.CONFIG,
        exitCodes.UNAVAILABLE,
      ]).size,
    ).toBe(6);
  });

  // docs/configuration.md is generated from the same option set (test/docs/configuration.test.ts).
  it('lists every flag in --help', () => {
    const help = helpText();
    for (const key of agentOptions.keys()) expect(help).toContain(agentOptions.names(key).flag);
  });
});

describe('bad command lines (the real program)', { timeout: 180_000 }, () => {
  const oneLine = (stderr: string): string => {
    const lines = stderr.trim().split('\n');
    expect(lines, `one line on stderr, got: ${stderr}`).toHaveLength(1);
    return lines[0]!;
  };

  it('gives each class of mistake its exit code and one line naming the problem', async () => {
    const dir = await temp();
    const rec = path.join(dir.path, 'rec');
    mkdirSync(rec);
    const notADir = path.join(dir.path, 'file');
    writeFileSync(notADir, 'x');
    const badYaml = path.join(dir.path, 'bad.yaml');
    writeFileSync(badYaml, 'agent: [unclosed\n');
    const state = ['--state-dir', path.join(dir.path, 'state')];
    const cases: { args: string[]; code: number; says: RegExp }[] = [
      { args: ['watch', rec, '--frobnicate', ...state], code: exitCodes.USAGE, says: /Unknown option '--frobnicate'/ },
      { args: ['launch', ...state], code: exitCodes.USAGE, says: /Unknown command "launch"/ },
      { args: ['watch', rec, '--sever', 'http://h', ...state], code: exitCodes.USAGE, says: /did you mean --server\?/ },
      {
        args: ['upload', rec, '--after-upload', 'delete', ...state],
        code: exitCodes.USAGE,
        says: /--after-upload does not apply to upload \(it is a setting of watch\)/,
      },
      {
        args: ['status', '--bandwidth-limit', '1MiB', ...state],
        code: exitCodes.USAGE,
        says: /does not apply to status/,
      },
      { args: ['upload', rec, '--json', ...state], code: exitCodes.USAGE, says: /--json does not apply to upload/ },
      {
        // Without a server the only copy would be the bundled server's, on this machine.
        args: ['watch', rec, '--after-upload', 'delete', ...state],
        code: exitCodes.USAGE,
        says: /afterUpload delete with no server URL .*--server-url .*--allow-local-delete/,
      },
      {
        args: ['watch', rec, '--server', 'ftp://example.com', ...state],
        code: exitCodes.USAGE,
        says: /serverUrl \(--server.*"ftp:\/\/example.com".*http:\/\/ or https:\/\//i,
      },
      {
        args: ['watch', rec, '--server', 'not a url', ...state],
        code: exitCodes.USAGE,
        says: /serverUrl.*"not a url"/,
      },
      {
        args: ['watch', rec, '--bandwidth-limit', 'fast', ...state],
        code: exitCodes.USAGE,
        says: /bandwidthLimit.*"fast".*expected a size/,
      },
      {
        args: ['watch', path.join(dir.path, 'missing'), ...state],
        code: exitCodes.NO_INPUT,
        says: /watch folder .*missing does not exist/,
      },
      {
        args: ['upload', path.join(dir.path, 'nope.mcap'), ...state],
        code: exitCodes.NO_INPUT,
        says: /No such file or folder: .*nope\.mcap/,
      },
      {
        args: ['watch', rec, '--state-dir', notADir],
        code: exitCodes.STATE_DIR,
        says: /state directory .*file is not a directory/,
      },
      {
        // Node's recursive mkdir never returns under /proc; the program must fail at once.
        args: ['watch', rec, '--state-dir', '/proc/ros2-upload-test/state'],
        code: exitCodes.STATE_DIR,
        says: /Cannot create the state directory \/proc\/ros2-upload-test\/state: ENOENT/,
      },
      {
        args: ['watch', rec, '--embedded-upload-dir', '/proc/ros2-upload-test/uploads', ...state],
        code: exitCodes.STATE_DIR,
        says: /Cannot use the upload folder \/proc\/ros2-upload-test\/uploads/,
      },
      {
        args: ['status', '--state-dir', path.join(dir.path, 'never')],
        code: exitCodes.STATE_DIR,
        says: /No agent journal in .*never/,
      },
      {
        args: ['watch', rec, '--config', path.join(dir.path, 'none.yaml'), ...state],
        code: exitCodes.CONFIG,
        says: /Cannot read config file .*none\.yaml/,
      },
      {
        args: ['watch', rec, '--config', badYaml, ...state],
        code: exitCodes.CONFIG,
        says: /bad\.yaml is not valid YAML/,
      },
      {
        args: ['watch', rec, '--ros', ...state],
        code: exitCodes.UNAVAILABLE,
        says: /--ros was given but ROS 2 is not usable/,
      },
    ];
    const typo = await runAgent(['watch', rec, ...state], {
      env: plainEnv({ UPLOAD_AGENT_SERVER: 'https://uploads.example.com' }),
    });
    expect(typo.code).toBe(exitCodes.USAGE);
    expect(oneLine(typo.stderr)).toMatch(
      /^ros2-upload-agent: Unknown environment variable UPLOAD_AGENT_SERVER \(did you mean UPLOAD_AGENT_SERVER_URL\?\)/,
    );
    for (const { args, code, says } of cases) {
      const result = await runAgent(args);
      expect(result.code, `${args.join(' ')}: exit code (stderr: ${result.stderr})`).toBe(code);
      expect(oneLine(result.stderr), args.join(' ')).toMatch(
        new RegExp(`^ros2-upload-agent: .*${says.source}`, says.flags),
      );
    }
  });

  it('refuses a second agent on the same state directory, and takes over the lock of a killed one', async () => {
    const dir = await temp();
    const rec = path.join(dir.path, 'rec');
    mkdirSync(rec);
    const state = path.join(dir.path, 'state');
    const args = ['watch', rec, '--state-dir', state, '--embedded-upload-dir', path.join(dir.path, 'uploads')];
    const first: SpawnedAgent = spawnAgent(args);
    cleanups.push(async () => {
      first.kill('SIGKILL');
      await first.exited;
    });
    await waitFor(() => first.stderr.includes('watching for recordings'), 'the first agent running', 90_000);
    const second = await runAgent(args);
    expect(second.code).toBe(exitCodes.LOCKED);
    expect(oneLine(second.stderr)).toMatch(
      /^ros2-upload-agent: Another upload agent is using the state directory .*state/,
    );
    // kill -9 leaves the lock file behind; the kernel dropped the lock with the process.
    first.kill('SIGKILL');
    await first.exited;
    const third = spawnAgent(args);
    cleanups.push(async () => {
      third.kill('SIGKILL');
      await third.exited;
    });
    await waitFor(() => third.stderr.includes('watching for recordings'), 'a new agent after kill -9', 90_000);
    third.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
  });

  it('prints --version and --help and exits 0', async () => {
    const version = await runAgent(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(
      (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );
    expect((await runAgent(['-V'])).stdout).toBe(version.stdout);
    const help = await runAgent(['--help'], { env: plainEnv() });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ros2-upload-agent watch <dir>');
    expect(help.stdout).toContain('--after-upload <keep|delete|move>');
    // Each command's help lists the settings of that command only.
    const upload = await runAgent(['upload', '--help']);
    expect(upload.code).toBe(0);
    expect(upload.stdout).toMatch(/^Usage: ros2-upload-agent upload/);
    expect(upload.stdout).toContain('--bandwidth-limit');
    expect(upload.stdout).not.toContain('--after-upload');
    const status = await runAgent(['status', '--help']);
    expect(status.stdout).toContain('--json');
    expect(status.stdout).toContain('--state-dir');
    expect(status.stdout).not.toContain('--chunk-size');
    expect((await runAgent(['watch', '--help'])).stdout).toContain('--after-upload');
    // What really happens without a server URL.
    expect(help.stdout).toMatch(
      /--server-url, --server <string>\s+Base URL.*Unset: the agent starts the bundled server/,
    );
  });
});
