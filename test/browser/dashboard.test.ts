import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { launchChromium, type HeadlessBrowser } from '../helpers/browser.js';
import { putChunk, call } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { spawnAgent, type SpawnedAgent } from '../cli/support/spawn-agent.js';

/** The page's globals, as seen by the callbacks that run inside Chromium (this project has no DOM typings). */
interface PageRow {
  textContent: string | null;
  querySelector(selector: string): { value: number } | null;
}
declare const document: { querySelectorAll(selector: string): Iterable<PageRow> };
declare const window: { dashboardStats: { renders: number } };

const TOKENS = [
  'robot1=robot1-token-0123456789abcdef0123456789-0001',
  'robot2=robot2-token-0123456789abcdef0123456789-0002',
];
const VIEWERS = ['ops=viewer-token-0123456789abcdef0123456789-0001'];

let browser: HeadlessBrowser | undefined;
let server: TestServer | undefined;
let agent: SpawnedAgent | undefined;
let dir: TempDir | undefined;
afterEach(async () => {
  agent?.kill('SIGKILL');
  await agent?.exited;
  agent = undefined;
  await browser?.close();
  browser = undefined;
  await server?.close();
  server = undefined;
  await dir?.remove();
  dir = undefined;
});

/** A bag as rosbag2 leaves it: two splits and the metadata.yaml that lists them. */
function writeBag(root: string, name: string, sizes: number[]): string {
  const bag = path.join(root, name);
  mkdirSync(bag, { recursive: true });
  const files = sizes.map((size, index) => {
    const file = `${name}_${index}.mcap`;
    writeFileSync(path.join(bag, file), randomBytes(size));
    return file;
  });
  writeFileSync(
    path.join(bag, 'metadata.yaml'),
    `rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: mcap\n  relative_file_paths:\n${files
      .map((file) => `    - ${file}\n`)
      .join('')}`,
  );
  return bag;
}

describe('the dashboard in headless Chromium, while the real agent uploads', { timeout: 180_000 }, () => {
  it('signs in; shows the robot, a moving progress bar, the bag complete, a failure with its code', async () => {
    dir = await createTempDir('dashboard-browser');
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS, uploadDir: path.join(dir.path, 'server') });
    const bag = writeBag(path.join(dir.path, 'robot'), 'survey', [64 * 1024, 3 * 1024 * 1024]);

    browser = await launchChromium();
    const { page } = browser;
    await page.goto(`${server.url}/`);
    // A token never goes in a URL: the page asks for it in a form.
    await page.locator('#login').waitFor({ state: 'visible' });
    expect(page.url()).toBe(`${server.url}/dashboard/`);
    await page.fill('#token', 'robot1-token-0123456789abcdef0123456789-0001');
    await page.click('#login-form button');
    await page.locator('#login-error').filter({ hasText: 'viewer token' }).waitFor();
    await page.fill('#token', 'viewer-token-0123456789abcdef0123456789-0001');
    await page.click('#login-form button');
    await page.locator('#fleet').waitFor({ state: 'visible' });
    await page.locator('#connection', { hasText: 'live' }).waitFor();
    const robot1 = page.locator('#robots tr[data-key="robot1"]');
    await expect(robot1.locator('td').nth(1).textContent()).resolves.toBe('offline');

    // The real agent uploads the bag, throttled so that the progress bar has time to move.
    agent = spawnAgent([
      'upload',
      bag,
      '--server-url',
      server.url,
      '--token',
      'robot1-token-0123456789abcdef0123456789-0001',
      '--state-dir',
      path.join(dir.path, 'agent-state'),
      '--chunk-size',
      '128KiB',
      '--bandwidth-limit',
      '400KiB',
    ]);
    const bar = page.locator('#uploads tr', { hasText: 'survey/survey_1.mcap' }).locator('progress');
    await bar.waitFor();
    const first = await page.waitForFunction(
      () => {
        const progress = [...document.querySelectorAll('#uploads tr')]
          .find((row) => row.textContent?.includes('survey/survey_1.mcap'))
          ?.querySelector('progress');
        return progress && progress.value > 0 ? progress.value : undefined;
      },
      undefined,
      { timeout: 60_000 },
    );
    const before = (await first.jsonValue()) as number;
    await page.waitForFunction(
      (earlier) => {
        const progress = [...document.querySelectorAll('#uploads tr')]
          .find((row) => row.textContent?.includes('survey/survey_1.mcap'))
          ?.querySelector('progress');
        return progress !== undefined && progress !== null && progress.value > earlier;
      },
      before,
      { timeout: 60_000 },
    );
    await expect(robot1.locator('td').nth(1).textContent()).resolves.toBe('online');
    await browser.screenshot('dashboard-uploading');

    // The bag turns complete once metadata.yaml and both splits are verified.
    const bagRow = page.locator('#bags tr[data-key="robot1/survey"]');
    await bagRow.locator('td', { hasText: /^complete$/ }).waitFor({ timeout: 90_000 });
    await expect(bagRow.locator('td').nth(3).textContent()).resolves.toBe('2 / 2');
    const exit = await agent.exited;
    expect(exit.code, agent.stderr).toBe(0);
    await page.locator('#completions tr', { hasText: 'survey/metadata.yaml' }).waitFor();
    await page.locator('#uploads tbody tr').first().waitFor({ state: 'detached' });

    // A failure is listed with its code and what the code means.
    const created = await call(
      server.url,
      'POST',
      '/v1/sessions',
      { path: 'broken.bin', size: 2048, fingerprint: `fp1:${'0'.repeat(64)}`, chunkSize: 1024 },
      { token: 'robot2-token-0123456789abcdef0123456789-0002' },
    );
    const bad = await putChunk(server.url, String(created.json.id), 0, Buffer.alloc(1024), {
      token: 'robot2-token-0123456789abcdef0123456789-0002',
      checksum: 'crc32:00000000',
    });
    expect(bad.status).toBe(422);
    const failure = page.locator('#failures tr', { hasText: 'CHUNK_CHECKSUM_MISMATCH' });
    await failure.waitFor();
    await expect(failure.textContent()).resolves.toMatch(/robot2.*a chunk failed its checksum and was not stored/);
    await browser.screenshot('dashboard-complete-and-failure');

    // The server restarts: the page reconnects by itself, still signed in (the cookie outlives the process).
    const port = server.server.port;
    await server.close({ keepFiles: true });
    await page.locator('#connection', { hasText: 'reconnecting' }).waitFor();
    server = await startTestServer({
      tokens: TOKENS,
      viewerTokens: VIEWERS,
      uploadDir: path.join(dir.path, 'server'),
      port,
    });
    await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 60_000 });
    await page.locator('#bags tr[data-key="robot1/survey"] td', { hasText: /^complete$/ }).waitFor();
    const stats = await page.evaluate(() => window.dashboardStats);
    expect(stats.renders).toBeGreaterThan(1);
  });
});
