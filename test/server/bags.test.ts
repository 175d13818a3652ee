import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BagDetail, BagView } from '../../common/protocol/fleet-views.js';
import type { BagCompletedEvent } from '../../server/index.js';
import { bagFolderOf, parseBagMetadata } from '../../server/bags/bag-metadata.js';
import { fixtureFiles, putWholeFile, viewerGet } from '../helpers/fleet-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { waitFor } from '../helpers/wait-for.js';

const TOKENS = [
  'robot1=robot1-token-0123456789abcdef0123456789-0001',
  'robot2=robot2-token-0123456789abcdef0123456789-0002',
];
const VIEWERS = ['ops=viewer-token-0123456789abcdef0123456789-0001'];
const VIEWER = 'viewer-token-0123456789abcdef0123456789-0001';
const ROBOT1 = 'robot1-token-0123456789abcdef0123456789-0001';
const ROBOT2 = 'robot2-token-0123456789abcdef0123456789-0002';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("rosbag2's metadata.yaml", () => {
  it('lists the splits of Humble bags as stored on disk: plain MCAP, SQLite, and .zstd per file', () => {
    const names = (bag: string): string[] =>
      parseBagMetadata(
        fixtureFiles(bag)
          .find((file) => file.name === 'metadata.yaml')
          ?.data.toString('utf8') ?? '',
      ).files;
    expect(names('mcap_plain')).toEqual([
      'mcap_plain_0.mcap',
      'mcap_plain_1.mcap',
      'mcap_plain_2.mcap',
      'mcap_plain_3.mcap',
    ]);
    expect(names('sqlite_plain')).toEqual([
      'sqlite_plain_0.db3',
      'sqlite_plain_1.db3',
      'sqlite_plain_2.db3',
      'sqlite_plain_3.db3',
    ]);
    // relative_file_paths names the compressed files; files[].path the uncompressed ones.
    expect(names('mcap_zstd')).toEqual([
      'mcap_zstd_0.mcap.zstd',
      'mcap_zstd_1.mcap.zstd',
      'mcap_zstd_2.mcap.zstd',
      'mcap_zstd_3.mcap.zstd',
    ]);
  });

  it("reads Jazzy's version 9 (custom_data, ros_distro) and old versions whose paths begin with the bag folder", () => {
    const jazzy = `rosbag2_bagfile_information:
  version: 9
  storage_identifier: mcap
  duration: {nanoseconds: 5}
  starting_time: {nanoseconds_since_epoch: 1}
  message_count: 2
  topics_with_message_count: []
  compression_format: ""
  compression_mode: ""
  relative_file_paths: [run_0.mcap, run_1.mcap]
  files:
    - {path: run_0.mcap, starting_time: {nanoseconds_since_epoch: 1}, duration: {nanoseconds: 1}, message_count: 1}
    - {path: run_1.mcap, starting_time: {nanoseconds_since_epoch: 2}, duration: {nanoseconds: 1}, message_count: 1}
  custom_data: {mission: survey}
  ros_distro: jazzy
`;
    expect(parseBagMetadata(jazzy)).toEqual({
      version: 9,
      storageIdentifier: 'mcap',
      files: ['run_0.mcap', 'run_1.mcap'],
    });
    const foxy = `rosbag2_bagfile_information:
  version: 4
  storage_identifier: sqlite3
  relative_file_paths: [rosbag2_2021/rosbag2_2021_0.db3]
`;
    expect(parseBagMetadata(foxy).files).toEqual(['rosbag2_2021_0.db3']);
  });

  it('falls back to files[].path (adding .zstd in file compression mode) when relative_file_paths is absent', () => {
    const text = `rosbag2_bagfile_information:
  version: 5
  compression_format: zstd
  compression_mode: FILE
  files: [{path: a_0.mcap}, {path: a_1.mcap.zstd}]
`;
    expect(parseBagMetadata(text).files).toEqual(['a_0.mcap.zstd', 'a_1.mcap.zstd']);
  });

  it('refuses what is not a bag description, naming the problem', () => {
    expect(() => parseBagMetadata('a: [')).toThrow(/not valid YAML/);
    expect(() => parseBagMetadata('other: 1')).toThrow(/no rosbag2_bagfile_information/);
    expect(() => parseBagMetadata('rosbag2_bagfile_information: {version: 5}')).toThrow(/lists no files/);
    expect(() => parseBagMetadata('rosbag2_bagfile_information: {relative_file_paths: [..]}')).toThrow(
      /cannot be a split/,
    );
  });

  it('tells which stored paths make their folder a bag', () => {
    expect(bagFolderOf('2024/run1/run1_0.mcap')).toBe('2024/run1');
    expect(bagFolderOf('run1/metadata.yaml')).toBe('run1');
    expect(bagFolderOf('run1/run1_0.db3.zstd')).toBe('run1');
    expect(bagFolderOf('run1/notes.txt')).toBeUndefined();
    expect(bagFolderOf('top.mcap')).toBeUndefined();
  });
});

describe('the bag view over real uploads', () => {
  it('shows a bag incomplete with what is missing, then complete (once, one event) with its last split', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    const completed: BagCompletedEvent[] = [];
    server.server.events.on('bag-completed', (event) => completed.push(event));
    const files = fixtureFiles('mcap_plain');
    const last = files.find((file) => file.name === 'mcap_plain_2.mcap');
    // Every split but one, then metadata.yaml: the bag waits for the split.
    for (const file of files.filter((f) => f !== last)) {
      expect((await putWholeFile(server.url, `day1/mcap_plain/${file.name}`, file.data, ROBOT1)).status).toBe(201);
    }
    await server.server.settled();
    const waiting = await viewerGet<BagDetail>(server.url, '/v1/bags/robot1/day1/mcap_plain', VIEWER);
    expect(waiting.status).toBe(200);
    expect(waiting.json).toMatchObject({
      uploader: 'robot1',
      bag: 'day1/mcap_plain',
      complete: false,
      hasMetadata: true,
      expected: 4,
      arrived: 3,
      missing: ['mcap_plain_2.mcap'],
      missingAll: ['mcap_plain_2.mcap'],
      files: 4,
      completedAt: null,
      eventId: null,
    });
    expect(completed).toEqual([]);

    if (!last) throw new Error('fixture without mcap_plain_2.mcap');
    expect((await putWholeFile(server.url, `day1/mcap_plain/${last.name}`, last.data, ROBOT1)).status).toBe(201);
    await server.server.settled();
    const done = await viewerGet<BagDetail>(server.url, '/v1/bags/robot1/day1/mcap_plain', VIEWER);
    const bytes = files.reduce((sum, file) => sum + file.data.length, 0);
    expect(done.json).toMatchObject({ complete: true, arrived: 4, missing: [], missingCount: 0, files: 5, bytes });
    expect(done.json.eventId).toMatch(/^[0-9a-f]{32}$/);
    expect(done.json.verified.map((file) => [file.name, file.listed])).toEqual([
      ['mcap_plain_0.mcap', true],
      ['mcap_plain_1.mcap', true],
      ['mcap_plain_2.mcap', true],
      ['mcap_plain_3.mcap', true],
      ['metadata.yaml', false],
    ]);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      eventId: done.json.eventId,
      uploader: 'robot1',
      bag: 'day1/mcap_plain',
      bytes,
    });
    expect(completed[0]?.files.map((file) => path.posix.basename(file.path)).sort()).toEqual(
      files.map((file) => file.name).sort(),
    );

    // The same content again changes nothing and completes nothing twice.
    expect((await putWholeFile(server.url, `day1/mcap_plain/${last.name}`, last.data, ROBOT1)).status).toBe(200);
    await server.server.settled();
    expect(completed).toHaveLength(1);
  });

  it('completes a bag when metadata.yaml arrives last, for compressed splits too', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    for (const file of fixtureFiles('mcap_zstd')) {
      if (file.name !== 'metadata.yaml') {
        await putWholeFile(server.url, `mcap_zstd/${file.name}`, file.data, ROBOT2);
        await server.server.settled();
        const bag = await viewerGet<BagDetail>(server.url, '/v1/bags/robot2/mcap_zstd', VIEWER);
        // Before metadata.yaml nobody knows what the bag will hold: not complete, nothing listed as missing.
        expect(bag.json).toMatchObject({ complete: false, hasMetadata: false, expected: null, missing: [] });
      }
    }
    const metadata = fixtureFiles('mcap_zstd').find((file) => file.name === 'metadata.yaml');
    if (!metadata) throw new Error('no metadata.yaml');
    await putWholeFile(server.url, 'mcap_zstd/metadata.yaml', metadata.data, ROBOT2);
    await server.server.settled();
    const bag = await viewerGet<BagDetail>(server.url, '/v1/bags/robot2/mcap_zstd', VIEWER);
    expect(bag.json).toMatchObject({ complete: true, expected: 4, arrived: 4, storageIdentifier: 'mcap' });
  });

  it('lists bags for a viewer (all uploaders) and an uploader (its own only), and filters by state', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    for (const file of fixtureFiles('sqlite_plain'))
      await putWholeFile(server.url, `a/${file.name}`, file.data, ROBOT1);
    const first = fixtureFiles('mcap_plain')[0];
    if (!first) throw new Error('empty fixture');
    await putWholeFile(server.url, `b/${first.name}`, first.data, ROBOT2);
    await server.server.settled();

    const all = await viewerGet<{ bags: BagView[] }>(server.url, '/v1/bags', VIEWER);
    expect(all.status, JSON.stringify(all.json)).toBe(200);
    expect(all.json.bags.map((bag) => `${bag.uploader}:${bag.bag}:${bag.complete}`).sort()).toEqual([
      'robot1:a:true',
      'robot2:b:false',
    ]);
    const incomplete = await viewerGet<{ bags: BagView[] }>(server.url, '/v1/bags?state=incomplete', VIEWER);
    expect(incomplete.json.bags.map((bag) => bag.uploader)).toEqual(['robot2']);
    // An uploader sees its own bags only, whatever it asks for.
    const own = await viewerGet<{ bags: BagView[] }>(server.url, '/v1/bags?uploader=robot2', ROBOT1);
    expect(own.json.bags.map((bag) => bag.uploader)).toEqual(['robot1']);
    expect((await viewerGet(server.url, '/v1/bags/robot2/b', ROBOT1)).status).toBe(404);
    expect((await viewerGet(server.url, '/v1/bags/robot2/b', ROBOT2)).status).toBe(200);
    expect((await viewerGet(server.url, '/v1/bags', undefined)).status).toBe(401);
    expect((await viewerGet(server.url, '/v1/bags', 'not-a-token-at-all')).status).toBe(401);
    expect((await viewerGet(server.url, '/v1/bags?state=sideways', VIEWER)).status).toBe(400);
    // The fleet view and the metrics are viewers' only.
    for (const route of ['/v1/fleet', '/metrics', '/v1/dashboard/session']) {
      const answer = await viewerGet(server.url, route, ROBOT1);
      expect(answer.status, route).toBe(403);
      expect(answer.json.code, route).toBe('FORBIDDEN');
      expect((await viewerGet(server.url, route, undefined)).status, route).toBe(401);
      expect((await viewerGet(server.url, route, VIEWER)).status, route).toBe(200);
    }
  });

  it('builds the bags of files stored before schema 2 at the first start, without webhooks for the past', async () => {
    server = await startTestServer({ tokens: TOKENS, viewerTokens: VIEWERS });
    for (const file of fixtureFiles('sqlite_plain'))
      await putWholeFile(server.url, `old/${file.name}`, file.data, ROBOT1);
    await server.server.settled();
    const uploadDir = server.uploadDir;
    await server.close({ keepFiles: true });
    // Make the database what version 1 left: no bag tables, no announcement state.
    const db = new Database(path.join(uploadDir, 'state', 'uploads.db'));
    db.exec(`DROP TABLE bags; DROP TABLE webhook_deliveries; DROP TABLE uploader_stats; DROP INDEX files_to_announce;
      DROP INDEX files_by_time; ALTER TABLE files DROP COLUMN announce;
      UPDATE meta SET value = '1' WHERE key = 'schema_version';`);
    db.close();
    let posted = 0;
    const receiver = await import('node:http').then(({ createServer }) =>
      createServer((_req, res) => {
        posted += 1;
        res.end();
      }),
    );
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as { port: number }).port;
    try {
      server = await startTestServer({
        tokens: TOKENS,
        viewerTokens: VIEWERS,
        uploadDir,
        onBagComplete: `http://127.0.0.1:${port}/bags`,
        onFileComplete: `http://127.0.0.1:${port}/files`,
      });
      const bag = await waitFor(async () => {
        const answer = await viewerGet<BagDetail>(server?.url ?? '', '/v1/bags/robot1/old', VIEWER);
        return answer.status === 200 ? answer.json : undefined;
      }, 'the bag to be rebuilt');
      expect(bag).toMatchObject({ complete: true, expected: 4, arrived: 4 });
      await server.server.settled();
      const metrics = await viewerGet(server.url, '/metrics', VIEWER);
      expect(String((metrics.json as { raw?: string }).raw)).toMatch(
        /ros2_upload_server_webhook_pending\{hook="bag"\} 0/,
      );
      expect(posted).toBe(0);
    } finally {
      receiver.close();
    }
  });
});
