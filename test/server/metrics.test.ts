import { afterEach, describe, expect, it } from 'vitest';
import { call, putChunk, uploadFile } from '../helpers/native-upload.js';
import { fixtureFiles, putWholeFile } from '../helpers/fleet-client.js';
import path from 'node:path';
import { writeRandomFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const TOKENS = [
  'robot1=robot1-token-0123456789abcdef0123456789-0001',
  'robot2=robot2-token-0123456789abcdef0123456789-0002',
];
const ROBOT1 = 'robot1-token-0123456789abcdef0123456789-0001';
const VIEWER_HEADERS = { authorization: 'Bearer viewer-token-0123456789abcdef0123456789-0001' };

let server: TestServer | undefined;
let dir: TempDir | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await dir?.remove();
  dir = undefined;
});

/** One sample's value from Prometheus' text format (0 when the series is absent). */
function sample(text: string, series: string): number {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

async function scrape(url: string): Promise<string> {
  const answer = await fetch(url, { headers: VIEWER_HEADERS });
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return answer.text();
}

describe('GET /metrics after real uploads', () => {
  it('counts the bytes, chunks, sessions, files and refusals that were sent, per uploader', async () => {
    dir = await createTempDir('metrics');
    server = await startTestServer({
      tokens: TOKENS,
      viewerTokens: ['ops=viewer-token-0123456789abcdef0123456789-0001'],
      rateLimit: true,
      rateLimitAuthFailures: 2,
      metricsListen: '127.0.0.1:0',
    });
    const sizes = [3 * 1024 + 100, 1024, 5000];
    let bytes = 0;
    let chunks = 0;
    for (const [index, size] of sizes.entries()) {
      const file = path.join(dir.path, `f${index}.bin`);
      await writeRandomFile(file, size);
      const result = await uploadFile(server.url, file, `loose/f${index}.bin`, { token: ROBOT1, chunkSize: 1024 });
      expect(result.complete.status).toBe(200);
      bytes += size;
      chunks += Math.ceil(size / 1024);
    }
    const bag = fixtureFiles('sqlite_plain');
    for (const file of bag) await putWholeFile(server.url, `bag/${file.name}`, file.data, ROBOT1);
    const bagBytes = bag.reduce((sum, file) => sum + file.data.length, 0);
    await server.server.settled();

    // Refusals: a damaged chunk, a wrong token, a rate limit (2 lookups an hour allowed here).
    const extra = path.join(dir.path, 'extra.bin');
    await writeRandomFile(extra, 2048);
    const open = await uploadFile(server.url, extra, 'loose/extra.bin', {
      token: ROBOT1,
      chunkSize: 1024,
      skip: [0, 1],
    });
    const id = String(open.create.json.id);
    expect(
      (await putChunk(server.url, id, 0, Buffer.alloc(1024), { token: ROBOT1, checksum: 'crc32:00000000' })).status,
    ).toBe(422);
    expect(
      (await call(server.url, 'GET', '/v1/files/loose/f0.bin', undefined, { token: 'wrong-token-123' })).status,
    ).toBe(401);

    const text = await scrape(`${server.url}/metrics`);
    expect(sample(text, 'ros2_upload_server_received_bytes_total{api="native"}')).toBe(bytes);
    expect(sample(text, 'ros2_upload_server_received_bytes_total{api="whole-file"}')).toBe(bagBytes);
    expect(sample(text, 'ros2_upload_server_chunks_received_total{api="native"}')).toBe(chunks);
    expect(sample(text, 'ros2_upload_server_uploader_received_bytes_total{uploader="robot1"}')).toBe(bytes + bagBytes);
    expect(sample(text, 'ros2_upload_server_sessions_created_total{api="native"}')).toBe(sizes.length + 1);
    expect(sample(text, 'ros2_upload_server_sessions_completed_total{api="native"}')).toBe(sizes.length);
    expect(sample(text, 'ros2_upload_server_sessions_open')).toBe(1);
    expect(sample(text, 'ros2_upload_server_files_stored_total{api="whole-file"}')).toBe(bag.length);
    expect(sample(text, 'ros2_upload_server_stored_bytes_total{api="native"}')).toBe(bytes);
    expect(sample(text, 'ros2_upload_server_completion_duration_seconds_count{api="native"}')).toBe(sizes.length);
    expect(sample(text, 'ros2_upload_server_completion_duration_seconds_count{api="whole-file"}')).toBe(bag.length);
    expect(sample(text, 'ros2_upload_server_chunks_refused_total{reason="CHUNK_CHECKSUM_MISMATCH"}')).toBe(1);
    expect(sample(text, 'ros2_upload_server_auth_failures_total')).toBe(1);
    expect(sample(text, 'ros2_upload_server_bags{state="complete"}')).toBe(1);
    expect(sample(text, 'ros2_upload_server_bags_completed_total')).toBe(1);
    expect(
      sample(
        text,
        'ros2_upload_server_http_request_duration_seconds_count' +
          '{method="PUT",route="/v1/sessions/:id/chunks/:index",status="200"}',
      ),
    ).toBe(chunks);
    const lastSeen = sample(text, 'ros2_upload_server_uploader_last_seen_timestamp_seconds{uploader="robot1"}');
    expect(Math.abs(lastSeen - Date.now() / 1000)).toBeLessThan(120);
    expect(text).not.toMatch(/uploader_last_seen_timestamp_seconds\{uploader="robot2"\}/);
    expect(sample(text, 'ros2_upload_server_uploaders_online')).toBe(1);
    expect(sample(text, 'ros2_upload_server_storage_free_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);

    // --metrics-listen: the same numbers without a token, and nothing else there.
    const metricsUrl = server.server.metricsUrl ?? '';
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const separate = await (await fetch(metricsUrl)).text();
    expect(sample(separate, 'ros2_upload_server_received_bytes_total{api="native"}')).toBe(bytes);

    // A rate limit's refusal is counted per route: past the failed-authentication limit (2), an
    // address gets 429 (last, since it then turns away this address's valid requests too).
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1)
      statuses.push(
        (await call(server.url, 'GET', '/v1/files/loose/f0.bin', undefined, { token: 'wrong-token-123' })).status,
      );
    expect(statuses).toContain(429);
    const limited = await (await fetch(metricsUrl)).text();
    expect(sample(limited, 'ros2_upload_server_rate_limited_total{route="/v1/files/*path"}')).toBe(
      statuses.filter((status) => status === 429).length,
    );
    expect((await fetch(metricsUrl.replace('/metrics', '/v1/fleet'))).status).toBe(404);
  });

  it('refuses a --metrics-listen that is no HOST:PORT, naming the option', async () => {
    await expect(startTestServer({ metricsListen: 'localhost' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/metricsListen.*HOST:PORT/),
    });
  });
});
