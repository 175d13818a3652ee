import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { startHarness } from '../cli/support/agent-harness.js';
import { runAgent } from '../cli/support/spawn-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { call } from '../helpers/native-upload.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 11, point 15: control, invisible format and separator characters in paths are refused
 * on both sides, named by code point. Before the fix a C1 control, a bidi override, a line
 * separator or a zero-width character passed both the agent and the server: a file named
 * `evil\u202Egpj.mcap` was stored, and displays as `evilmcap.jpg`.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Every file under a folder, relative. */
function tree(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)));
}

const CASES: [string, string][] = [
  ['\u0085', 'U+0085 NEXT LINE'],
  ['\u009B', 'U+009B CONTROL SEQUENCE INTRODUCER'],
  ['\u202E', 'U+202E RIGHT-TO-LEFT OVERRIDE'],
  ['\u2067', 'U+2067 RIGHT-TO-LEFT ISOLATE'],
  ['\u2028', 'U+2028 LINE SEPARATOR'],
  ['\u200B', 'U+200B ZERO WIDTH SPACE'],
  ['\uFEFF', 'U+FEFF ZERO WIDTH NO-BREAK SPACE (BYTE ORDER MARK)'],
  ['\u{E0041}', 'U+E0041 TAG "A" (an invisible tag character)'],
];

describe('the server refuses control and format characters in paths', { timeout: 60_000 }, () => {
  it('on every native route and in the legacy filename, naming the character; nothing is stored', async () => {
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const body = Buffer.from('eleven byte');
    const sha256 = createHash('sha256').update(body).digest('hex');
    for (const [character, name] of CASES) {
      const bad = `run1/evil${character}gpj.mcap`;
      // "run1/evil" is 9 bytes.
      const where = `${name}`;
      const create = await call(server.url, 'POST', routes.sessions, {
        path: bad,
        size: body.length,
        fingerprint: `fp1:${'0'.repeat(64)}`,
      });
      expect(create.status, where).toBe(400);
      expect(create.json).toMatchObject({ code: 'INVALID_PATH' });
      expect(create.json.error).toContain(`${name}`);
      expect(create.json.error).toContain(' at byte 9 of ');

      const put = await call(server.url, 'PUT', routes.file(bad), body, {
        headers: { 'content-type': 'application/octet-stream', 'x-content-sha256': sha256 },
      });
      expect(put.status, where).toBe(400);
      expect(put.json.error).toContain(`${name} at byte 9 `);

      const lookup = await call(server.url, 'GET', routes.file(bad));
      expect(lookup.status, where).toBe(400);
      expect(lookup.json.code).toBe('INVALID_PATH');

      const legacy = await legacyPost(server.url, '/upload/init', { filename: bad, filesize: 11, chunks: 1 });
      expect(legacy.status, where).toBe(400);
      expect(legacy.json).toMatchObject({ success: false, code: 'INVALID_PATH' });
      expect(legacy.json.error).toContain(`filename must not contain control, invisible format or separator`);
      expect(legacy.json.error).toContain(`${name} at byte 9 `);
    }
    expect(tree(path.join(server.uploadDir, 'completed'))).toEqual([]);
    // The same names without the character are fine.
    const fine = await call(server.url, 'PUT', routes.file('run1/evilgpj.mcap'), body, {
      headers: { 'content-type': 'application/octet-stream', 'x-content-sha256': sha256 },
    });
    expect(fine.status).toBe(201);
  });
});

describe('the agent holds back a file whose name the path rule refuses', { timeout: 120_000 }, () => {
  it('`upload`: names it by code point, escaped; sends the rest, holds its bag`s metadata.yaml; exits 1', async () => {
    const dir = await createTempDir('path-characters');
    cleanups.push(() => dir.remove());
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const bag = path.join(dir.path, 'run1');
    mkdirSync(bag);
    writeFileSync(path.join(bag, 'run1_0.mcap'), syntheticMcap(2048));
    writeFileSync(path.join(bag, 'run1_1.mcap'), syntheticMcap(3072));
    writeFileSync(path.join(bag, 'evil\u202Egpj.mcap'), syntheticMcap(1024));
    writeFileSync(path.join(bag, 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
    const other = path.join(dir.path, 'run2');
    mkdirSync(other);
    writeFileSync(path.join(other, 'run2_0.mcap'), syntheticMcap(1024));
    writeFileSync(path.join(other, 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');

    const result = await runAgent([
      'upload',
      bag,
      other,
      '--server',
      server.url,
      '--state-dir',
      path.join(dir.path, 'state'),
      '--no-ros',
    ]);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    const lines = result.stdout.split('\n');
    const refused = lines.find((line) => line.startsWith('not sent run1/evil'));
    expect(refused, result.stdout).toBeDefined();
    expect(refused).toContain('not sent run1/evil\\u{202E}gpj.mcap: ');
    expect(refused).toContain('U+202E RIGHT-TO-LEFT OVERRIDE at byte 9 of "run1/evil\\u{202E}gpj.mcap"');
    expect(refused).toContain('rename it to upload it');
    // The raw character never reaches the terminal.
    expect(result.stdout.includes('\u202E'), result.stdout).toBe(false);
    expect(lines).toContain(
      'not sent run1/metadata.yaml: it goes after run1/evil\\u{202E}gpj.mcap, which was not sent',
    );
    expect(tree(path.join(server.uploadDir, 'completed', 'anonymous')).sort()).toEqual([
      'run1/run1_0.mcap',
      'run1/run1_1.mcap',
      'run2/metadata.yaml',
      'run2/run2_0.mcap',
    ]);
  });

  it('`watch`: shows it as failed (INVALID_PATH) in the status, never sends it, uploads the rest', async () => {
    const h = await startHarness({ quietPeriod: 0.2, settleTime: 1 });
    cleanups.push(() => h.close());
    mkdirSync(path.join(h.root, 'good'));
    writeFileSync(path.join(h.root, 'good', 'good_0.mcap'), syntheticMcap(2048));
    writeFileSync(path.join(h.root, 'good', 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
    mkdirSync(path.join(h.root, 'bad'));
    writeFileSync(path.join(h.root, 'bad', 'bad_0.mcap'), syntheticMcap(2048));
    writeFileSync(path.join(h.root, 'bad', 'bad_1\u2028.mcap'), syntheticMcap(1024));
    writeFileSync(path.join(h.root, 'bad', 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
    // A whole folder whose name holds a zero-width space.
    mkdirSync(path.join(h.root, 'hid\u200Bden'));
    writeFileSync(path.join(h.root, 'hid\u200Bden', 'x_0.mcap'), syntheticMcap(1024));

    await waitFor(
      () => h.stored('good/metadata.yaml') && h.stored('bad/bad_0.mcap'),
      'the good bag and the good split of the bad one',
      60_000,
    );
    const refused = await waitFor(() => {
      const failed = h.agent.status().uploads.filter((upload) => upload.state === 'failed');
      return failed.length === 2 ? failed : undefined;
    }, 'both refused files in the status');
    const byName = new Map(refused.map((upload) => [path.basename(upload.localPath), upload]));
    const split = byName.get('bad_1\u2028.mcap')!;
    expect(split.errorCode).toBe('INVALID_PATH');
    expect(split.lastError).toContain('U+2028 LINE SEPARATOR at byte 9 of "bad/bad_1\\u{2028}.mcap"');
    expect(split.lastError).toMatch(/^held back: .*rename it to upload it$/);
    const nested = byName.get('x_0.mcap')!;
    expect(nested.lastError).toContain('U+200B ZERO WIDTH SPACE at byte 3 ');
    // The bag with a refused file never gets its metadata.yaml (its arrival means "complete").
    const waitingMetadata = h.agent
      .status()
      .uploads.find((upload) => upload.localPath === path.join(h.root, 'bad', 'metadata.yaml'));
    expect(waitingMetadata?.state).toBe('waiting_for_close');
    await h.agent.watcher!.rescan();
    expect(tree(path.join(h.server.uploadDir, 'completed', 'anonymous')).sort()).toEqual([
      'bad/bad_0.mcap',
      'good/good_0.mcap',
      'good/metadata.yaml',
    ]);
    // Renamed, it is a new file and goes, and so does the bag's metadata.yaml.
    renameSync(path.join(h.root, 'bad', 'bad_1\u2028.mcap'), path.join(h.root, 'bad', 'bad_1.mcap'));
    await waitFor(
      () => h.stored('bad/bad_1.mcap') && h.stored('bad/metadata.yaml'),
      'the renamed split and metadata.yaml',
      60_000,
    );
  });
});
