import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentOptions } from '../../agent/app/agent-options.js';
import type { OptionSpec } from '../../common/config/index.js';
import { CONFIG_DOC, acceptedValues, renderConfigDoc } from '../../scripts/generate-config-docs.js';
import { serverOptions } from '../../server/config/server-options.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = path.join(ROOT, 'scripts/generate-config-docs.ts');
const doc = readFileSync(CONFIG_DOC, 'utf8');

/** The generated region `name` of the document, without its markers. */
function region(text: string, name: string): string {
  const start = text.search(new RegExp(`^<!-- BEGIN GENERATED ${name}\\b`, 'm'));
  const stop = text.indexOf(`<!-- END GENERATED ${name} -->`);
  expect(start, `region ${name} starts`).toBeGreaterThanOrEqual(0);
  expect(stop, `region ${name} ends after it starts`).toBeGreaterThan(start);
  return text.slice(text.indexOf('\n', start) + 1, stop);
}

/** The data rows of a Markdown table, split into cells (escaped pipes kept inside their cell). */
function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .slice(2)
    .map((line) => line.slice(2, -2).split(/ (?<!\\)\| /));
}

describe('docs/configuration.md', () => {
  it('is what the option schema generates (run `npm run docs:config` after changing an option)', () => {
    expect(renderConfigDoc(doc)).toBe(doc);
  });

  it('lists every agent option once, with the flag, variable and ROS parameter the program reads', () => {
    const table = rows(region(doc, 'agent-options'));
    expect(table.map((cells) => cells[0])).toEqual(agentOptions.keys().map((key) => `\`${key}\``));
    for (const [i, key] of agentOptions.keys().entries()) {
      const names = agentOptions.names(key);
      const spec: OptionSpec = agentOptions.specs[key]!;
      expect(table[i]!.slice(1, 4)).toEqual([
        spec.cli === false ? '(none)' : `\`${names.flag}\``,
        `\`${names.env}\``,
        spec.ros === false ? '(none)' : `\`${names.ros}\``,
      ]);
      expect(table[i]![5]).toBe(agentOptions.formatDefault(key));
    }
  });

  it('lists every server option once, with its flag and variable (no ROS column)', () => {
    const table = rows(region(doc, 'server-options'));
    expect(table.map((cells) => cells[0])).toEqual(serverOptions.keys().map((key) => `\`${key}\``));
    for (const [i, key] of serverOptions.keys().entries()) {
      const names = serverOptions.names(key);
      const spec: OptionSpec = serverOptions.specs[key]!;
      expect(table[i]).toHaveLength(6);
      expect(table[i]!.slice(1, 3)).toEqual([spec.cli === false ? '(none)' : `\`${names.flag}\``, `\`${names.env}\``]);
    }
    // One rule, no exceptions: the legacy names are aliases, listed in their own table.
    expect(table.find((cells) => cells[0] === '`uploadDir`')?.[2]).toBe('`UPLOAD_SERVER_UPLOAD_DIR`');
    const aliases = rows(region(doc, 'option-aliases'));
    expect(aliases).toContainEqual([
      'ros2-upload-server',
      '`UPLOAD_DIR`',
      'environment',
      '`UPLOAD_SERVER_UPLOAD_DIR`',
      'yes',
    ]);
    expect(aliases).toContainEqual([
      'ros2-upload-server',
      '`SSL_CERT`',
      'environment',
      '`UPLOAD_SERVER_SSL_CERT`',
      'no',
    ]);
    expect(aliases).toContainEqual(['ros2-upload-agent', '`--server`', 'command line', '`--server-url`', 'no']);
  });

  it('states ranges, choices and secrets from the specs', () => {
    expect(acceptedValues(agentOptions.specs.chunkSize)).toBe('size, 1 KiB–64 MiB');
    expect(acceptedValues(agentOptions.specs.maxConcurrentUploads)).toBe('integer, 1–64');
    expect(acceptedValues(agentOptions.specs.afterUpload)).toBe('`keep`, `delete`, `move`');
    expect(acceptedValues(agentOptions.specs.quietPeriod)).toBe('duration, ≤ 1h');
    expect(acceptedValues(agentOptions.specs.token)).toBe('text (secret)');
    expect(acceptedValues(serverOptions.specs.tokens)).toBe('list (secret)');
    expect(acceptedValues(serverOptions.specs.rateLimitInit)).toBe('integer, ≥ 0');
  });

  it('refuses a document that lost a region marker, naming it', () => {
    expect(() => renderConfigDoc(doc.replace('<!-- END GENERATED server-options -->', ''))).toThrow(
      /no region "server-options"/,
    );
  });
});

describe('npm run docs:config', { timeout: 60_000 }, () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await createTempDir('config-docs');
  });
  afterAll(() => dir.remove());

  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8' });

  it('--check exits 1 on a stale copy, and a rewrite makes it current again', () => {
    const copy = path.join(dir.path, 'configuration.md');
    const stale = doc.replace(/^\| `chunkSize` .*$/m, '| `chunkSize` | `--chunk-size` | stale row |');
    expect(stale).not.toBe(doc);
    writeFileSync(copy, stale);

    const check = run('--check', '--file', copy);
    expect(check.status, check.stderr).toBe(1);
    expect(check.stderr).toContain('is out of date with the option schema: run `npm run docs:config`');

    const write = run('--file', copy);
    expect(write.status, write.stderr).toBe(0);
    expect(readFileSync(copy, 'utf8')).toBe(doc);
    expect(run('--check', '--file', copy).status).toBe(0);
  });
});
