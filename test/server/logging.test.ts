import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, type CapturedLogs } from '../helpers/capture-logger.js';
import { uploadFile } from '../helpers/native-upload.js';
import { writeRandomFile } from '../helpers/random-file.js';
import { legacyUploadFile } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

let logs: CapturedLogs;
let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  logs = captureLogger();
  server = await startTestServer({ logger: logs.logger, compressionThreshold: 1024 });
  files = await createTempDir('log-files');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

const events = (name: string, path?: string): Record<string, unknown>[] =>
  logs.entries().filter((e) => e.event === name && (path === undefined || e.path === path));

describe('logs', () => {
  it('one line for the start, each 10% step, the completion with size, duration and throughput', async () => {
    const file = path.join(files.path, 'logged.bin');
    await writeRandomFile(file, 20 * 1024);
    await uploadFile(server.url, file, 'logged.bin', { chunkSize: 1024, parallel: 3 });
    const [started] = events('upload_started', 'logged.bin');
    expect(started).toMatchObject({
      uploader: 'anonymous',
      size: 20 * 1024,
      chunks: 20,
      msg: expect.stringMatching(/^Initialized upload: logged\.bin \(20480 bytes, 20 chunks\) - ID: /),
    });
    const progress = events('upload_progress', 'logged.bin');
    expect(progress.map((p) => p.percent)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(progress[0]!.msg).toBe('Received chunk 2/20 for logged.bin (10.0%)');
    const [completed] = events('upload_completed', 'logged.bin');
    expect(completed).toMatchObject({
      size: 20 * 1024,
      durationSeconds: expect.any(Number),
      bytesPerSecond: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('one line for the compression ratio, kept or not', async () => {
    const text = path.join(files.path, 'words.txt');
    await writeFile(text, 'hello rosbag '.repeat(1000));
    await legacyUploadFile(server.url, text, 'words.txt', { chunks: 2, compression: true });
    const random = path.join(files.path, 'noise.bin');
    await writeRandomFile(random, 4096);
    await legacyUploadFile(server.url, random, 'noise.bin', { chunks: 1, compression: true });
    const [kept] = await waitFor(() => events('compression', 'words.txt'), 'the compression line');
    expect(kept).toMatchObject({
      size: 13000,
      kept: true,
      msg: expect.stringMatching(/^Compressed words\.txt: 13000 → \d+ bytes \(\d+\.\d% reduction\)$/),
    });
    const [dropped] = await waitFor(() => events('compression', 'noise.bin'), 'the compression line');
    expect(dropped).toMatchObject({ kept: false });
  });
});
