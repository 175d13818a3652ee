import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { UploadAgent } from '../../agent/app/upload-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { sha256Of } from '../helpers/random-file.js';
import { RequestChecksumFront } from '../helpers/request-checksum-front.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir } from '../helpers/tmp-dir.js';
import { EventLog, KiB, createWorld, waitFor, waitForCompletion, type EngineWorld } from './harness.js';

/**
 * Corruption on the wire outside the chunk bytes: a damaged byte in a request line, a header or
 * a JSON body. The agent sends X-Request-Checksum on every native request (so the server refuses
 * a damaged one instead of acting on it), re-sends only the damaged request, and checks that
 * every answer naming a stored file names the file it sent; a mismatch is never verified, and no
 * after-upload action runs on it. The server side of the checksum is emulated by a real front
 * that recomputes it with the shared checkRequestChecksum and answers as the agreed server does.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function worldWithFront(): Promise<{ world: EngineWorld; front: RequestChecksumFront; proxy: FaultProxy }> {
  const world = await createWorld();
  cleanups.push(() => world.close());
  const front = await RequestChecksumFront.start(world.server.url);
  cleanups.push(() => front.close());
  // agent -> fault proxy (damages bytes) -> front (checks the checksum) -> server
  const proxy = await FaultProxy.start({ port: front.port });
  cleanups.push(() => proxy.close());
  return { world, front, proxy };
}

describe('request integrity (X-Request-Checksum) and answer checks', { timeout: 120_000 }, () => {
  it('every native request carries an X-Request-Checksum that matches what arrived', async () => {
    const { world, front } = await worldWithFront();
    const manager = world.manager({ uploadUrl: front.url, chunkSize: 64 * KiB });
    await manager.start();
    const big = await world.randomFile('big.bin', 640 * KiB);
    const small = await world.randomFile('small.bin', 3 * KiB);
    const slow = await world.randomFile('slow.bin', 900 * KiB);
    const ids = [
      await manager.addUpload(big.path, { remotePath: 'checked/big.bin' }),
      await manager.addUpload(small.path, { remotePath: 'checked/dir with space/small é.bin' }),
    ];
    for (const id of ids) await waitForCompletion(manager, id);
    // A cancelled upload deletes its session (DELETE).
    manager.bandwidthLimit = 64 * KiB;
    const cancelled = await manager.addUpload(slow.path, { remotePath: 'checked/slow.bin' });
    await waitFor(() => front.requests('PUT', /\/chunks\/0$/).length >= 2, 'the slow upload under way');
    await manager.cancel(cancelled);

    const kinds = [
      front.requests('POST', /^\/v1\/sessions$/),
      front.requests('PUT', /^\/v1\/sessions\/[^/]+\/chunks\/\d+$/),
      front.requests('POST', /^\/v1\/sessions\/[^/]+\/complete$/),
      front.requests('PUT', /^\/v1\/files\/checked\/dir%20with%20space\/small%20%C3%A9\.bin$/),
      front.requests('DELETE', /^\/v1\/sessions\/[^/]+$/),
    ];
    for (const kind of kinds) expect(kind.length).toBeGreaterThan(0);
    const v1 = front.log;
    expect(v1.filter((entry) => entry.result !== 'ok')).toEqual([]);
    expect(await world.storedSha('checked/big.bin')).toBe(big.sha256);
  });

  it('a damaged chunk index, header or SHA-256 digit is refused and only that request is sent again', async () => {
    const { world, front, proxy } = await worldWithFront();
    const chunk = 64 * KiB;
    const file = await world.randomFile('damaged.bin', 10 * chunk);
    proxy.setFaults({
      flipInPattern: [
        // chunk 3's request line names chunk 2 ('3' is 0x33, '2' 0x32)
        { pattern: '/chunks/3' },
        // the first chunk's checksum header: "crc32:" becomes "crc32;"
        { pattern: 'x-chunk-checksum: crc32:' },
        // a digit of the SHA-256 in the complete body
        { pattern: `{"sha256":"${file.sha256.slice(0, 12)}` },
      ],
    });
    const manager = world.manager({ uploadUrl: proxy.url(), chunkSize: chunk });
    const log = new EventLog(manager);
    await manager.start();
    const done = await waitForCompletion(manager, await manager.addUpload(file.path, { remotePath: 'damaged.bin' }));
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('damaged.bin')).toBe(file.sha256);
    expect(proxy.stats.flips).toBe(3);

    const refused = front.log.filter((entry) => entry.refused);
    expect(refused.map((entry) => `${entry.method} ${entry.target.replace(/sessions\/[^/]+/, 'sessions/ID')}`)).toEqual(
      ['PUT /v1/sessions/ID/chunks/0', 'PUT /v1/sessions/ID/chunks/2', 'POST /v1/sessions/ID/complete'],
    );
    // Bytes: every chunk accepted exactly once; the two damaged chunk requests cost one chunk each.
    const chunkPuts = front.requests('PUT', /\/chunks\/\d+$/);
    const accepted = chunkPuts.filter((entry) => !entry.refused);
    expect(accepted.map((entry) => Number(entry.target.split('/').at(-1))).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    expect(accepted.reduce((sum, entry) => sum + entry.bodyBytes, 0)).toBe(file.size);
    expect(chunkPuts.reduce((sum, entry) => sum + entry.bodyBytes, 0)).toBe(file.size + 2 * chunk);
    // No session reset, no repair round: one create, two completes (the damaged one refused).
    expect(front.requests('POST', /^\/v1\/sessions$/)).toHaveLength(1);
    expect(front.requests('POST', /\/complete$/)).toHaveLength(2);
    expect(log.of('retrying').map((retry) => retry.reason)).toEqual([
      expect.stringContaining('REQUEST_CHECKSUM_MISMATCH'),
      expect.stringContaining('REQUEST_CHECKSUM_MISMATCH'),
      expect.stringContaining('REQUEST_CHECKSUM_MISMATCH'),
    ]);
  });

  it('an answer that names another file is retried, not verified (a damaged byte in the answer)', async () => {
    const { world, front, proxy } = await worldWithFront();
    const file = await world.randomFile('answer.bin', 300 * KiB);
    // The create answer's path comes back damaged ("answer.bin" -> "answer.bio").
    proxy.setFaults({ flipInPattern: [{ pattern: '"path":"answers/answer.bin', direction: 'down' }] });
    const manager = world.manager({ uploadUrl: proxy.url(), chunkSize: 64 * KiB });
    const log = new EventLog(manager);
    await manager.start();
    const done = await waitForCompletion(
      manager,
      await manager.addUpload(file.path, { remotePath: 'answers/answer.bin' }),
    );
    expect(done.sha256).toBe(file.sha256);
    expect(proxy.stats.flips).toBe(1);
    const [retry] = log.of('retrying');
    expect(retry?.reason).toMatch(/ANSWER_MISMATCH|answered for another file/);
    expect(retry?.reason).toContain('path "answers/answer.bio" (sent: "answers/answer.bin")');
    expect(front.requests('POST', /^\/v1\/sessions$/)).toHaveLength(2);
  });
});

describe('a path damaged on the way, with --after-upload delete', { timeout: 120_000 }, () => {
  it('is never verified: the local file stays until the server names the right path', async () => {
    const dir = await createTempDir('damaged-path');
    cleanups.push(() => dir.remove());
    // The server as it is (it may or may not check X-Request-Checksum): the agent must not rely on it.
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const proxy = await FaultProxy.start({ port: server.server.port });
    cleanups.push(() => proxy.close());
    proxy.setFaults({
      flipInPattern: [
        // the path in the create body of the split (a session: it is over 1 MiB)
        { pattern: '"path":"dmg/dmg_0.mc' },
        // the path in the whole-file URL of metadata.yaml
        { pattern: 'PUT /v1/files/dmg/metadata.yam' },
      ],
    });
    const root = path.join(dir.path, 'recordings');
    const split = syntheticMcap(2 * 1024 * 1024 + 123);
    const metadata = Buffer.from('rosbag2_bagfile_information: {version: 5}\n');
    await mkdir(path.join(root, 'dmg'), { recursive: true });
    await writeFile(path.join(root, 'dmg', 'dmg_0.mcap'), split);
    await writeFile(path.join(root, 'dmg', 'metadata.yaml'), metadata);
    const agent = new UploadAgent({
      config: {
        serverUrl: proxy.url(),
        watchDir: root,
        stateDir: path.join(dir.path, 'state'),
        afterUpload: 'delete',
        quietPeriod: 0.1,
        retryDelay: 0.02,
        retryMaxDelay: 0.3,
        chunkSize: 512 * KiB,
      },
      logger: pino({ level: 'silent' }),
    });
    cleanups.push(() => agent.stop());
    // Whenever the agent retries because of a mismatch or a refused request, the file must still be there.
    const atMismatch: { file: string; exists: boolean; reason: string }[] = [];
    agent.engine.on('retrying', (event) => {
      if (/ANSWER_MISMATCH|answered for another file|REQUEST_CHECKSUM_MISMATCH/.test(event.reason))
        atMismatch.push({
          file: event.upload.localPath,
          exists: existsSync(event.upload.localPath),
          reason: event.reason,
        });
    });
    const verified: string[] = [];
    agent.on('verified', (file) => verified.push(file.remotePath));
    await agent.start();

    await waitFor(() => !existsSync(path.join(root, 'dmg')), 'the bag uploaded and deleted', 60_000);
    expect(proxy.stats.flips).toBe(2);
    expect(verified.sort()).toEqual(['dmg/dmg_0.mcap', 'dmg/metadata.yaml']);
    expect(sha256Of(readFileSync(server.completedPath('anonymous', 'dmg/dmg_0.mcap')))).toBe(sha256Of(split));
    expect(readFileSync(server.completedPath('anonymous', 'dmg/metadata.yaml')).equals(metadata)).toBe(true);
    expect(atMismatch.map((entry) => path.basename(entry.file)).sort()).toEqual(['dmg_0.mcap', 'metadata.yaml']);
    for (const entry of atMismatch) expect(entry.exists, `${entry.file} present at ${entry.reason}`).toBe(true);
    // Both values are in the reason (when the server stored it under the damaged name).
    const named = atMismatch.find((entry) => /answered for another file/.test(entry.reason));
    if (named)
      expect(named.reason).toMatch(
        /path "dmg\/(dmg_0\.mbap|metadata\.yal)" \(sent: "dmg\/(dmg_0\.mcap|metadata\.yaml)"\)/,
      );
  });
});
