import { randomBytes } from 'node:crypto';
import { mkdir, readdir, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { legacyChunk, legacyPost } from '../helpers/legacy-client.js';
import { mountTmpfs, requireMounts, skipWithoutMounts, unmount } from '../helpers/mounts.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The legacy API's chunk form cannot fill the disk without a session: a file part that comes
 * before its upload_id is held in a small memory buffer, never streamed to disk; a part is never
 * longer than its session allows, its parts in flight together neither; the disk must have room
 * for it; and an uploader's bodies in flight are capped (maxBytesInFlight). Against a small real
 * store (a 16-32 MiB tmpfs) where it matters: the old behaviour filled it.
 */
const skip = await skipWithoutMounts('legacy disk-fill tests on a small tmpfs');
const MiB = 1024 * 1024;
const BOUNDARY = '----bounds';

let dir: TempDir | undefined;
const mounts: string[] = [];
const servers: TestServer[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close({ keepFiles: true });
  for (const point of mounts.splice(0)) await unmount(point);
});
afterAll(async () => {
  await dir?.remove();
});

/** A server whose storage is a tmpfs of `bytes` bytes (no disk reserve: the store is all there is). */
async function smallStore(bytes: number, options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  await requireMounts();
  dir ??= await createTempDir('legacy-bounds');
  const point = path.join(dir.path, `store-${mounts.length}-${Date.now()}`);
  await mkdir(point);
  await mountTmpfs(point, bytes);
  mounts.push(point);
  const server = await startTestServer({ uploadDir: point, diskReserve: 0, ...options });
  servers.push(server);
  return server;
}

async function plainServer(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  dir ??= await createTempDir('legacy-bounds');
  const server = await startTestServer({ uploadDir: path.join(dir.path, `plain-${Date.now()}`), ...options });
  servers.push(server);
  return server;
}

const freeBytes = async (server: TestServer): Promise<number> => {
  const info = await statfs(server.uploadDir);
  return info.bavail * info.bsize;
};

function field(name: string, value: string): Buffer {
  return Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
}
const fileHead = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="chunk"; filename="chunk"\r\nContent-Type: ` +
    `application/octet-stream\r\n\r\n`,
);
const fileTail = Buffer.from('\r\n');
const formEnd = Buffer.from(`--${BOUNDARY}--\r\n`);

/** `bytes` bytes of data in 1 MiB pieces, generated as they are sent. */
async function* payload(bytes: number): AsyncIterable<Buffer> {
  const block = randomBytes(Math.min(MiB, bytes));
  for (let sent = 0; sent < bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, bytes - sent));
}

interface FormAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * POSTs a multipart form made of `parts` (buffers, or streams of the file's bytes) to /upload/chunk, with its Content-
 * Length.
 */
function postForm(
  server: TestServer,
  parts: (Buffer | { stream: AsyncIterable<Buffer>; length: number })[],
): Promise<FormAnswer> {
  const length = parts.reduce((sum, part) => sum + (Buffer.isBuffer(part) ? part.length : part.length), 0);
  const body = Readable.from(
    (async function* all() {
      for (const part of parts) {
        if (Buffer.isBuffer(part)) yield part;
        else yield* part.stream;
      }
    })(),
  );
  return send(server, body, length);
}

function send(server: TestServer, body: Readable, length: number): Promise<FormAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${server.url}/upload/chunk`,
      {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(length) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (piece: string) => (text += piece));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text || '{}') }));
      },
    );
    request.on('error', reject);
    body.on('error', reject).pipe(request);
  });
}

async function init(server: TestServer, filesize: number, chunks: number): Promise<string> {
  const answer = await legacyPost(server.url, '/upload/init', {
    filename: `f-${randomBytes(4).toString('hex')}.bag`,
    filesize,
    chunks,
  });
  expect(answer.status).toBe(200);
  return answer.json.upload_id as string;
}

/** The lowest free space seen while `work` runs (sampled every few ms). */
async function lowestFreeDuring<T>(server: TestServer, work: Promise<T>): Promise<{ result: T; lowest: number }> {
  let lowest = await freeBytes(server);
  let done = false;
  const sampling = (async () => {
    while (!done) {
      lowest = Math.min(lowest, await freeBytes(server));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  try {
    return { result: await work, lowest };
  } finally {
    done = true;
    await sampling;
  }
}

describe.skipIf(skip)('the legacy chunk form on a small store', () => {
  it(
    'a file part before its upload_id is never written to disk: past 64 KiB it is refused, however ' +
      'many arrive at once',
    async () => {
      const server = await smallStore(32 * MiB);
      const id = await init(server, 1000, 1);
      const before = await freeBytes(server);
      // 6 forms of 48 MiB each at once (288 MiB against a 32 MiB store), the file part first.
      const forms = Array.from({ length: 6 }, () =>
        postForm(server, [
          fileHead,
          { stream: payload(48 * MiB), length: 48 * MiB },
          fileTail,
          field('upload_id', id),
          field('chunk_index', '0'),
          field('chunk_total', '1'),
          formEnd,
        ]),
      );
      const { result, lowest } = await lowestFreeDuring(server, Promise.all(forms));
      for (const answer of result) {
        expect(answer.status).toBe(400);
        expect(answer.json).toMatchObject({
          code: 'INVALID_FIELD',
          error: expect.stringMatching(/comes before its upload_id field and is over 64 KiB: send upload_id/),
        });
      }
      expect(before - lowest).toBeLessThan(MiB);
      expect(await readdir(path.join(server.uploadDir, 'temp'))).not.toContain('incoming');
    },
  );

  it(
    'a part is never longer than its session allows, and the parts of a session in flight together ' + 'neither',
    async () => {
      const server = await smallStore(16 * MiB);
      // One chunk of 1 MiB allowed, a 64 MiB part sent: refused as soon as it passes 1 MiB.
      const small = await init(server, MiB, 1);
      const before = await freeBytes(server);
      const { result: long, lowest } = await lowestFreeDuring(
        server,
        postForm(server, [
          field('upload_id', small),
          field('chunk_index', '0'),
          field('chunk_total', '1'),
          fileHead,
          { stream: payload(64 * MiB), length: 64 * MiB },
          fileTail,
          formEnd,
        ]),
      );
      expect(long.status).toBe(400);
      expect(long.json.code).toBe('CHUNK_SIZE_MISMATCH');
      expect(before - lowest).toBeLessThan(2 * MiB);

      // A 4 MiB upload in 4 chunks, 30 parts of 1 MiB sent at once (30 MiB against 16 MiB): the
      // disk never fills (no 507), the parts beyond what the upload allows are refused.
      const id = await init(server, 4 * MiB, 4);
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, n) =>
          postForm(server, [
            field('upload_id', id),
            field('chunk_index', String(n % 4)),
            field('chunk_total', '4'),
            fileHead,
            { stream: payload(MiB), length: MiB },
            fileTail,
            formEnd,
          ]),
        ),
      );
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.filter((status) => status !== 200 && status !== 400)).toEqual([]);
      expect(answers.filter((answer) => answer.status === 400).map((answer) => answer.json.code)).not.toContain(
        'INSUFFICIENT_STORAGE',
      );
      expect(statuses).toContain(200);
    },
  );

  it(
    'checks free space before writing a part: a chunk the disk has no room for is 507 and nothing ' + 'is written',
    async () => {
      const server = await smallStore(16 * MiB);
      const id = await init(server, 4 * MiB, 1);
      // The disk fills by other means after the init.
      const free = await freeBytes(server);
      await writeFile(path.join(server.uploadDir, 'filler'), Buffer.alloc(free - MiB));
      const left = await freeBytes(server);
      const answer = await postForm(server, [
        field('upload_id', id),
        field('chunk_index', '0'),
        field('chunk_total', '1'),
        fileHead,
        { stream: payload(4 * MiB), length: 4 * MiB },
        fileTail,
        formEnd,
      ]);
      expect(answer.status).toBe(507);
      expect(answer.json).toMatchObject({
        code: 'INSUFFICIENT_STORAGE',
        error: expect.stringMatching(/Not enough disk space on the server for this chunk/),
      });
      expect(await freeBytes(server)).toBe(left);
    },
  );
});

describe('the legacy chunk form (any machine)', () => {
  it(
    'a small file part before its upload_id is still accepted (held in memory), and the upload ' + 'completes',
    async () => {
      const server = await plainServer();
      const data = randomBytes(10_000);
      const id = await init(server, data.length, 1);
      const answer = await postForm(server, [
        fileHead,
        data,
        fileTail,
        field('upload_id', id),
        field('chunk_index', '0'),
        field('chunk_total', '1'),
        formEnd,
      ]);
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({ received_chunks: 1, duplicate: false });
      expect((await legacyPost(server.url, '/upload/finalize', { upload_id: id })).status).toBe(200);
    },
  );

  it(
    'caps the bytes one uploader has in flight (maxBytesInFlight): 429 with Retry-After, and the ' +
      'retry succeeds once the first ends',
    async () => {
      const server = await plainServer({ maxBytesInFlight: MiB });
      const first = await init(server, MiB, 1);
      const second = await init(server, MiB, 1);
      // The first form's part is being received (slowly): half of it sent, the rest held back.
      const body = new PassThrough();
      const head = Buffer.concat([
        field('upload_id', first),
        field('chunk_index', '0'),
        field('chunk_total', '1'),
        fileHead,
      ]);
      const data = randomBytes(MiB);
      const slow = send(server, body, head.length + data.length + fileTail.length + formEnd.length);
      body.write(head);
      body.write(data.subarray(0, MiB / 2));
      await waitFor(
        async () =>
          (await readdir(path.join(server.uploadDir, 'temp', first))).some((name) => name.startsWith('part-')),
        'the first part to be written',
      );
      const refused = await legacyChunk(server.url, second, 0, 1, randomBytes(MiB));
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(refused.json).toMatchObject({ code: 'RATE_LIMITED', error: expect.stringMatching(/maxBytesInFlight/) });
      body.end(Buffer.concat([data.subarray(MiB / 2), fileTail, formEnd]));
      expect((await slow).status).toBe(200);
      expect((await legacyChunk(server.url, second, 0, 1, randomBytes(MiB))).status).toBe(200);
    },
  );

  it('a chunk re-sent after finalize is a duplicate, and its upload folder is not created again', async () => {
    const server = await plainServer();
    const data = randomBytes(5000);
    const id = await init(server, data.length, 1);
    expect((await legacyChunk(server.url, id, 0, 1, data)).status).toBe(200);
    expect((await legacyPost(server.url, '/upload/finalize', { upload_id: id })).status).toBe(200);
    const again = await legacyChunk(server.url, id, 0, 1, data);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ duplicate: true, received_chunks: 1 });
    expect(await readdir(path.join(server.uploadDir, 'temp'))).not.toContain(id);
  });
});
