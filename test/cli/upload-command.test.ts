import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ttyProgress, plainProgress } from '../../agent/cli/progress-output.js';
import type { UploadSnapshot } from '../../agent/engine/upload-events.js';
import { listForUpload } from '../../agent/watcher/bag-listing.js';
import { FIXTURES, fixtureBag, syntheticMcap } from '../helpers/bag-writer.js';
import { uploadFile } from '../helpers/native-upload.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { RecordingProxy } from './support/recording-proxy.js';
import { runAgent } from './support/spawn-agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const dir = await createTempDir('upload-cmd');
  cleanups.push(() => dir.remove());
  const server = await startTestServer();
  cleanups.push(() => server.close());
  const proxy = await RecordingProxy.start(server.url);
  cleanups.push(() => proxy.close());
  const stored = (remote: string): Buffer | undefined => {
    const file = server.completedPath('anonymous', remote);
    return existsSync(file) ? readFileSync(file) : undefined;
  };
  return { dir, server, proxy, stored, state: path.join(dir.path, 'state') };
}

describe('ros2-upload-agent upload', { timeout: 120_000 }, () => {
  it('uploads folders and files (metadata.yaml last), exits 0 once verified; status shows them', async () => {
    const s = await setup();
    const bag = path.join(s.dir.path, 'mcap_plain');
    cpSync(path.join(FIXTURES, 'mcap_plain'), bag, { recursive: true });
    writeFileSync(path.join(bag, 'mcap_plain_0.mcap-wal'), 'never');
    const notes = path.join(s.dir.path, 'notes.txt');
    writeFileSync(notes, 'field notes');
    const result = await runAgent(['upload', bag, notes, '--server', s.proxy.url, '--state-dir', s.state]);
    expect(result.code, result.stderr).toBe(0);
    for (const [name, bytes] of fixtureBag('mcap_plain'))
      expect(s.stored(`mcap_plain/${name}`)?.equals(bytes), name).toBe(true);
    expect(s.stored('notes.txt')?.toString()).toBe('field notes');
    expect(s.stored('mcap_plain/mcap_plain_0.mcap-wal')).toBeUndefined();
    const lines = result.stdout.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('verified '))).toHaveLength(6);
    expect(lines.at(-1)).toBe('6 of 6 file(s) verified by the server');
    const metadataAt = s.proxy.uploadsFor('mcap_plain/metadata.yaml')[0]!.startedAt;
    for (let n = 0; n < 4; n++)
      expect(metadataAt).toBeGreaterThan(s.proxy.completionsFor(`mcap_plain/mcap_plain_${n}.mcap`)[0]!.finishedAt!);

    // `status --state-dir X` after `upload --state-dir X` reads the one-shot upload's journal too.
    const status = await runAgent(['status', '--state-dir', s.state]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/One-shot upload: not running/);
    expect(status.stdout).toMatch(/Queued: 0/);
    expect(status.stdout).toMatch(/Failed: 0/);
    expect(status.stdout).toContain('mcap_plain/metadata.yaml');
    expect(status.stdout).toContain('notes.txt');
  });

  it('exits 1 when a file is refused, and holds back its bag metadata', async () => {
    const s = await setup();
    const other = path.join(s.dir.path, 'other.mcap');
    writeFileSync(other, syntheticMcap(3000));
    expect((await uploadFile(s.server.url, other, 'clash/clash_0.mcap')).complete.status).toBe(200);
    const bag = path.join(s.dir.path, 'clash');
    mkdirSync(bag);
    writeFileSync(path.join(bag, 'clash_0.mcap'), syntheticMcap(5000));
    writeFileSync(path.join(bag, 'clash_1.mcap'), syntheticMcap(5000));
    writeFileSync(path.join(bag, 'metadata.yaml'), 'x: 1\n');
    const result = await runAgent(['upload', bag, '--server', s.proxy.url, '--state-dir', s.state]);
    expect(result.code).toBe(1);
    // The failure is said once (not again in a log line), and the metadata.yaml it holds back once, at the end.
    expect(result.stdout.match(/^failed clash\/clash_0\.mcap: .*/gm)).toHaveLength(1);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines.at(-2)).toBe(
      "not sent: clash/metadata.yaml (a bag's metadata.yaml goes only after the rest of its bag, which failed)",
    );
    expect(lines.at(-1)).toBe('1 of 3 file(s) verified by the server, 1 failed, 1 not sent');
    expect(s.stored('clash/clash_1.mcap')).toBeDefined();
    expect(s.stored('clash/metadata.yaml')).toBeUndefined();
    expect(s.stored('clash/clash_0.mcap')?.equals(readFileSync(other))).toBe(true);
  });
});

describe('upload order and progress output', { timeout: 120_000 }, () => {
  it('lists a bag folder in upload order, keeping its name; a split alone keeps its bag folder', async () => {
    const dir = await createTempDir('listing');
    cleanups.push(() => dir.remove());
    const bag = path.join(dir.path, 'run');
    mkdirSync(path.join(bag, 'sub'), { recursive: true });
    for (const name of [
      'metadata.yaml',
      'run_10.mcap',
      'run_9.mcap',
      'run_0.mcap',
      'notes.txt',
      'run_1.mcap.active',
      '.hidden',
    ])
      writeFileSync(path.join(bag, name), 'x');
    writeFileSync(path.join(bag, 'sub', 'a.json'), '{}');
    expect((await listForUpload(bag, { allFiles: true })).map((file) => file.remotePath)).toEqual([
      'run/run_0.mcap',
      'run/run_9.mcap',
      'run/run_10.mcap',
      'run/notes.txt',
      'run/metadata.yaml',
      'run/sub/a.json',
    ]);
    expect((await listForUpload(bag)).map((file) => file.remotePath)).toEqual([
      'run/run_0.mcap',
      'run/run_9.mcap',
      'run/run_10.mcap',
      'run/metadata.yaml',
    ]);
    expect((await listForUpload(path.join(bag, 'run_9.mcap')))[0]!.remotePath).toBe('run/run_9.mcap');
    expect((await listForUpload(path.join(bag, 'notes.txt')))[0]!.remotePath).toBe('notes.txt');
    expect((await listForUpload(path.join(bag, 'run_9.mcap'), { root: dir.path }))[0]!.remotePath).toBe(
      'run/run_9.mcap',
    );
  });

  const snapshot = (state: UploadSnapshot['state'], bytesSent: number): UploadSnapshot => ({
    id: 'u1',
    localPath: '/x/run/run_0.mcap',
    remotePath: 'run/run_0.mcap',
    bagName: 'run',
    state,
    priority: 5,
    bytesSent,
    bytesTotal: 1000,
    rate: 250,
    etaSeconds: 3,
    attempt: 1,
    lastError: state === 'retrying' ? 'connection reset' : undefined,
    sha256: undefined,
    metadata: undefined,
    queuedAt: new Date(0).toISOString(),
    startedAt: undefined,
    finishedAt: undefined,
  });

  it('plain output: one line per state change', () => {
    let text = '';
    const out = {
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
    } as unknown as NodeJS.WritableStream;
    const progress = plainProgress(out);
    progress.update(snapshot('queued', 0));
    progress.update(snapshot('uploading', 100));
    progress.update(snapshot('uploading', 500));
    progress.update(snapshot('retrying', 500));
    progress.line('verified run/run_0.mcap');
    expect(text.split('\n').filter(Boolean)).toEqual([
      'queued run/run_0.mcap (1000 B)',
      'uploading run/run_0.mcap (1000 B)',
      'retrying run/run_0.mcap (1000 B): connection reset',
      'verified run/run_0.mcap',
    ]);
  });

  it('terminal output: a bar per upload, redrawn in place', async () => {
    let text = '';
    const out = {
      isTTY: true,
      columns: 80,
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const progress = ttyProgress(out);
    progress.update(snapshot('uploading', 500));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(text).toContain('[############............]  50% run/run_0.mcap 250 B/s ETA 3s');
    progress.update(snapshot('uploading', 1000));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(text).toContain('\x1b[1A\x1b[0J');
    expect(text).toContain('100% run/run_0.mcap');
    progress.close();
  });
});
