import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as protocolHeaders, MAX_WHOLE_FILE_SIZE, routes } from '../../common/protocol/native-protocol.js';
import { LocalDiskStorage } from '../../server/index.js';
import { captureLogger, type CapturedLogs } from '../helpers/capture-logger.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { call, crcHeader, createSession, type Answer } from '../helpers/native-upload.js';
import { sha256Of } from '../helpers/random-file.js';
import { legacyGet } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { testToken } from '../helpers/tokens.js';

const MiB = 1024 * 1024;
const ROBOT1 = testToken('put-file robot1');
const ROBOT2 = testToken('put-file robot2');

let parent: TempDir;
let files: TempDir;
let logs: CapturedLogs;
let storage: FaultyStorage;
let server: TestServer;

interface PutOptions {
  sha256?: string | null;
  token?: string;
  headers?: Record<string, string>;
  /** The body on the wire when it differs from the file (gzip, a damaged copy). */
  wire?: Uint8Array;
}

/** PUT /v1/files/<path> with plain fetch: the file's bytes, its SHA-256 in the header. */
async function putFile(
  base: string,
  relativePath: string,
  data: Uint8Array,
  options: PutOptions = {},
): Promise<Answer> {
  const sha = options.sha256 === undefined ? sha256Of(data) : options.sha256;
  return call(base, 'PUT', routes.file(relativePath), options.wire ?? data, {
    ...(options.token ? { token: options.token } : {}),
    headers: {
      'content-type': 'application/octet-stream',
      ...(sha === null ? {} : { [protocolHeaders.contentSha256]: sha }),
      ...options.headers,
    },
  });
}

/** Every file left under temp/ (folders do not count). */
const tempEntries = async (): Promise<string[]> =>
  (await readdir(path.join(server.uploadDir, 'temp'), { recursive: true, withFileTypes: true }))
    .filter((entry) => !entry.isDirectory())
    .map((entry) => entry.name);
const metadataHeader = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

beforeAll(async () => {
  // The storage root sits inside a parent folder, so anything written outside it would show up there.
  parent = await createTempDir('put-file');
  files = await createTempDir('put-file-files');
  logs = captureLogger('info');
  const uploadDir = path.join(parent.path, 'storage');
  storage = new FaultyStorage(await LocalDiskStorage.open(uploadDir));
  server = await startTestServer({
    uploadDir,
    storage,
    logger: logs.logger,
    tokens: [`robot1=${ROBOT1}`, `robot2=${ROBOT2}`],
    allowAnonymous: true,
  });
});
afterAll(async () => {
  await server?.close();
  await parent?.remove();
  await files?.remove();
});

describe('PUT /v1/files/<path>', () => {
  it('stores a whole file in one request: 201, byte-identical, right fingerprint, nothing left in temp', async () => {
    for (const size of [0, 64 * 1024, 3 * MiB + 17]) {
      const data = randomBytes(size);
      const name = `whole/file-${size}.bin`;
      const answer = await putFile(server.url, name, data);
      expect(answer.status, `size ${size}`).toBe(201);
      expect(answer.json).toMatchObject({
        state: 'complete',
        path: name,
        size,
        sha256: sha256Of(data),
        completedAt: expect.any(String),
      });
      expect(Buffer.compare(await readFile(server.completedPath('anonymous', name)), data)).toBe(0);
      expect((await call(server.url, 'GET', routes.file(name))).json).toMatchObject({
        state: 'complete',
        size,
        sha256: sha256Of(data),
      });
      // The index holds the fingerprint a session client computes, so creating a session for the
      // same file says it is done.
      const local = path.join(files.path, `local-${size}.bin`);
      await writeFile(local, data);
      const create = await createSession(server.url, local, { path: name });
      expect(create.status).toBe(200);
      expect(create.json).toMatchObject({ state: 'complete', sha256: sha256Of(data) });
    }
    expect(await tempEntries()).toEqual([]);
  });

  it('answers 200 for the same content again, not touching the stored file (a retry after a lost answer)', async () => {
    const data = randomBytes(10_000);
    expect((await putFile(server.url, 'again/same.bin', data)).status).toBe(201);
    const before = await stat(server.completedPath('anonymous', 'again/same.bin'));
    const again = await putFile(server.url, 'again/same.bin', data);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ state: 'complete', path: 'again/same.bin', sha256: sha256Of(data) });
    const after = await stat(server.completedPath('anonymous', 'again/same.bin'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    // With replace asked for, the same content is still "already stored".
    expect(
      (await putFile(server.url, 'again/same.bin', data, { headers: { [protocolHeaders.uploadReplace]: 'true' } }))
        .status,
    ).toBe(200);
    // The same content put there by other means (not in the index) is recognised at commit, and indexed.
    const byHand = randomBytes(3000);
    await writeFile(server.completedPath('anonymous', 'again/by-hand.bin'), byHand);
    expect((await putFile(server.url, 'again/by-hand.bin', byHand)).status).toBe(200);
    // So is one a lookup meets first: hashed and indexed then.
    const lookedUp = randomBytes(2000);
    await writeFile(server.completedPath('anonymous', 'again/looked-up.bin'), lookedUp);
    expect((await call(server.url, 'GET', routes.file('again/looked-up.bin'))).json).toMatchObject({
      state: 'complete',
      size: 2000,
      sha256: sha256Of(lookedUp),
    });
    expect((await call(server.url, 'GET', routes.file('again/by-hand.bin'))).json).toMatchObject({
      sha256: sha256Of(byHand),
    });
    // A file stored through a session deduplicates the same way.
    const local = path.join(files.path, 'via-session.bin');
    const sessionData = randomBytes(5000);
    await writeFile(local, sessionData);
    const created = await createSession(server.url, local, { path: 'again/via-session.bin' });
    const id = created.json.id as string;
    await call(server.url, 'PUT', routes.chunk(id, 0), sessionData, {
      headers: { 'content-type': 'application/octet-stream', 'x-chunk-checksum': crcHeader(sessionData) },
    });
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: sha256Of(sessionData) })).status).toBe(200);
    expect((await putFile(server.url, 'again/via-session.bin', sessionData)).status).toBe(200);
    expect(await tempEntries()).toEqual([]);
  });

  it('refuses a different file at the path with 409 FILE_EXISTS unless x-upload-replace: true', async () => {
    const first = randomBytes(4000);
    const second = randomBytes(4000);
    expect((await putFile(server.url, 'replace/x.bin', first)).status).toBe(201);
    const refused = await putFile(server.url, 'replace/x.bin', second);
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      success: false,
      code: 'FILE_EXISTS',
      error: expect.stringMatching(/replace\/x\.bin/),
    });
    expect(Buffer.compare(await readFile(server.completedPath('anonymous', 'replace/x.bin')), first)).toBe(0);
    const replaced = await putFile(server.url, 'replace/x.bin', second, {
      headers: { [protocolHeaders.uploadReplace]: 'true' },
    });
    expect(replaced.status).toBe(201);
    expect(replaced.json).toMatchObject({ sha256: sha256Of(second) });
    expect(Buffer.compare(await readFile(server.completedPath('anonymous', 'replace/x.bin')), second)).toBe(0);
    expect((await call(server.url, 'GET', routes.file('replace/x.bin'))).json).toMatchObject({
      sha256: sha256Of(second),
    });
    // A file put there by hand (not in the index) of another size is refused as well.
    await mkdir(path.dirname(server.completedPath('anonymous', 'replace/by-hand.bin')), { recursive: true });
    await writeFile(server.completedPath('anonymous', 'replace/by-hand.bin'), 'by hand');
    expect((await putFile(server.url, 'replace/by-hand.bin', first)).status).toBe(409);
    // ... and one of the same size with other bytes, found when it is compared at commit.
    await writeFile(server.completedPath('anonymous', 'replace/same-size.bin'), randomBytes(4000));
    expect((await putFile(server.url, 'replace/same-size.bin', first)).json).toMatchObject({ code: 'FILE_EXISTS' });
    expect(await tempEntries()).toEqual([]);
  });

  it('refuses a body whose SHA-256 differs from x-content-sha256 with 422 and stores nothing', async () => {
    const data = randomBytes(70_000);
    const damaged = Buffer.from(data);
    damaged[12_345]! ^= 0x40;
    const answer = await putFile(server.url, 'bad/sum.bin', data, { wire: damaged });
    expect(answer.status).toBe(422);
    expect(answer.json).toMatchObject({
      success: false,
      code: 'FILE_CHECKSUM_MISMATCH',
      error: expect.stringMatching(/nothing was stored/),
    });
    expect((await call(server.url, 'GET', routes.file('bad/sum.bin'))).status).toBe(404);
    await expect(stat(server.completedPath('anonymous', 'bad/sum.bin'))).rejects.toThrow(/ENOENT/);
    expect(await tempEntries()).toEqual([]);
    expect((await putFile(server.url, 'bad/sum.bin', data)).status).toBe(201);
  });

  it('decodes a gzip-encoded body, verifies the decoded bytes and indexes their fingerprint', async () => {
    const data = Buffer.from('a line of a metadata.yaml\n'.repeat(200_000)); // 5.2 MB: two fingerprint ranges
    const answer = await putFile(server.url, 'gz/metadata.yaml', data, {
      wire: gzipSync(data),
      headers: { 'content-encoding': 'gzip' },
    });
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({ size: data.length, sha256: sha256Of(data) });
    expect(Buffer.compare(await readFile(server.completedPath('anonymous', 'gz/metadata.yaml')), data)).toBe(0);
    const local = path.join(files.path, 'metadata.yaml');
    await writeFile(local, data);
    expect((await createSession(server.url, local, { path: 'gz/metadata.yaml' })).json).toMatchObject({
      state: 'complete',
    });

    const notGzip = await putFile(server.url, 'gz/broken.bin', data.subarray(0, 1000), {
      headers: { 'content-encoding': 'gzip' },
    });
    expect(notGzip.status).toBe(400);
    expect(notGzip.json).toMatchObject({ code: 'BAD_REQUEST', error: expect.stringMatching(/not valid gzip/) });
    expect(await tempEntries()).toEqual([]);
  });

  it('413 over MAX_WHOLE_FILE_SIZE, declared or decoded (a gzip bomb stops at the limit); nothing stored', async () => {
    const big = Buffer.alloc(MAX_WHOLE_FILE_SIZE + 1, 7);
    const declared = await putFile(server.url, 'big/declared.bin', big);
    expect(declared.status).toBe(413);
    expect(declared.json).toMatchObject({ code: 'FILE_TOO_LARGE', error: expect.stringMatching(/through a session/) });
    const bomb = gzipSync(Buffer.alloc(64 * MiB));
    const decoded = await putFile(server.url, 'big/bomb.bin', Buffer.alloc(64 * MiB), {
      wire: bomb,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(decoded.status).toBe(413);
    expect(decoded.json).toMatchObject({ code: 'FILE_TOO_LARGE', error: expect.stringMatching(/decoded body/) });
    expect(await readdir(server.completedPath('anonymous', '')).then((names) => names.includes('big'))).toBe(false);
    expect(await tempEntries()).toEqual([]);
    // A server whose maxFileSize is below MAX_WHOLE_FILE_SIZE keeps its own limit.
    const small = await startTestServer({ maxFileSize: 1000 });
    try {
      expect((await putFile(small.url, 'over.bin', randomBytes(1001))).status).toBe(413);
      expect((await putFile(small.url, 'under.bin', randomBytes(1000))).status).toBe(201);
    } finally {
      await small.close();
    }
  });

  it('411 without Content-Length (a chunked body)', async () => {
    const data = randomBytes(1000);
    const response = await fetch(server.url + routes.file('chunked.bin'), {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', [protocolHeaders.contentSha256]: sha256Of(data) },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(data);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(411);
    expect(await response.json()).toMatchObject({
      success: false,
      code: 'LENGTH_REQUIRED',
      error: expect.stringMatching(/Content-Length/),
    });
  });

  it('400/415 for missing or malformed headers, with a message naming the header', async () => {
    const data = randomBytes(100);
    const cases: [PutOptions, number, string, RegExp][] = [
      [{ sha256: null }, 400, 'INVALID_FIELD', /x-content-sha256 header .* is required/],
      [{ sha256: 'abc' }, 400, 'INVALID_FIELD', /x-content-sha256 must be 64 hexadecimal digits/],
      [
        { headers: { [protocolHeaders.uploadMetadata]: 'not base64!' } },
        400,
        'INVALID_FIELD',
        /base64url-encoded JSON/,
      ],
      [
        { headers: { [protocolHeaders.uploadMetadata]: Buffer.from('{nope').toString('base64url') } },
        400,
        'INVALID_FIELD',
        /does not decode to JSON/,
      ],
      [
        { headers: { [protocolHeaders.uploadMetadata]: metadataHeader([1, 2]) } },
        400,
        'INVALID_FIELD',
        /must decode to a JSON object/,
      ],
      [
        {
          headers: {
            [protocolHeaders.uploadMetadata]: metadataHeader({
              a: JSON.parse('['.repeat(100) + ']'.repeat(100)) as unknown,
            }),
          },
        },
        400,
        'INVALID_FIELD',
        /nested deeper/,
      ],
      [{ headers: { [protocolHeaders.uploadReplace]: 'yes' } }, 400, 'INVALID_FIELD', /must be true or false/],
      // Beyond Node's 16 KiB of headers (docs/http-api.md: larger metadata needs a session).
      [
        { headers: { [protocolHeaders.uploadMetadata]: metadataHeader({ note: 'x'.repeat(20_000) }) } },
        400,
        'BAD_REQUEST',
        /headers too large/,
      ],
      [{ headers: { 'content-type': 'text/plain' } }, 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/octet-stream/],
      [{ headers: { 'content-encoding': 'br' } }, 415, 'UNSUPPORTED_MEDIA_TYPE', /"br" is not supported/],
    ];
    for (const [options, status, code, message] of cases) {
      const answer = await putFile(server.url, 'headers/x.bin', data, options);
      expect(answer.status, JSON.stringify(options)).toBe(status);
      expect(answer.json).toMatchObject({ success: false, code, error: expect.stringMatching(message) });
    }
    expect((await call(server.url, 'GET', routes.file('headers/x.bin'))).status).toBe(404);
    expect(await tempEntries()).toEqual([]);
  });

  it('stores the metadata header with the file', async () => {
    const data = randomBytes(100);
    const metadata = { robot: 'r1', topics: ['/imu', '/camera'], note: 'café' };
    const answer = await putFile(server.url, 'meta/with.bin', data, {
      token: ROBOT1,
      headers: { [protocolHeaders.uploadMetadata]: metadataHeader(metadata) },
    });
    expect(answer.status).toBe(201);
    const listing = await legacyGet(server.url, '/uploads', ROBOT1);
    expect(listing.json.uploads).toContainEqual(expect.objectContaining({ filename: 'meta/with.bin', metadata }));
  });

  it('refuses traversal and symlink escapes with 400 INVALID_PATH, writes nothing outside the root', async () => {
    const data = randomBytes(100);
    for (const raw of [
      '..%2F..%2Fescape.bin',
      'a/..%2F..%2F..%2Fescape.bin',
      '%2Fetc%2Fx',
      'a%5Cb',
      'a%00b',
      'C:%2Fx',
    ]) {
      const response = await fetch(`${server.url}/v1/files/${raw}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', [protocolHeaders.contentSha256]: sha256Of(data) },
        body: data,
      });
      expect(response.status, raw).toBe(400);
      expect(await response.json()).toMatchObject({ code: 'INVALID_PATH' });
    }
    const outside = path.join(parent.path, 'outside');
    await mkdir(outside, { recursive: true });
    await mkdir(server.completedPath('anonymous', ''), { recursive: true });
    await symlink(outside, server.completedPath('anonymous', 'escape'));
    const escaped = await putFile(server.url, 'escape/f.bin', data);
    expect(escaped.status).toBe(400);
    expect(escaped.json).toMatchObject({ code: 'INVALID_PATH', error: expect.stringMatching(/symbolic link/) });
    expect(await readdir(outside)).toEqual([]);
    const entries = await readdir(parent.path);
    expect(entries.sort()).toEqual(['outside', 'storage']);
    expect(await tempEntries()).toEqual([]);
  });

  it('cleans its temp file when the client hangs up in the middle of the body', async () => {
    const data = randomBytes(256 * 1024);
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `PUT ${routes.file('cut/short.bin')} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n` +
        `Content-Length: ${data.length}\r\n${protocolHeaders.contentSha256}: ${sha256Of(data)}\r\n\r\n`,
    );
    socket.write(data.subarray(0, 100_000));
    await waitFor(async () => (await tempEntries()).length > 0, 'the temp area of the upload');
    socket.destroy();
    await waitFor(async () => (await tempEntries()).length === 0, 'the temp area to be deleted');
    expect((await call(server.url, 'GET', routes.file('cut/short.bin'))).status).toBe(404);
  });

  it('507 when the disk fills up while writing (temp cleaned), and when free space is short up front', async () => {
    const data = randomBytes(50_000);
    storage.failWrites = 'ENOSPC';
    try {
      const full = await putFile(server.url, 'full/x.bin', data);
      expect(full.status).toBe(507);
      expect(full.json).toMatchObject({
        code: 'INSUFFICIENT_STORAGE',
        error: expect.stringMatching(/nothing was stored/),
      });
    } finally {
      storage.failWrites = undefined;
    }
    expect(await tempEntries()).toEqual([]);
    expect((await putFile(server.url, 'full/x.bin', data)).status).toBe(201);
    const tight = await startTestServer({ diskReserve: (await storage.freeSpace()) + 1024 * MiB });
    try {
      const refused = await putFile(tight.url, 'x.bin', data);
      expect(refused.status).toBe(507);
      expect(refused.json).toMatchObject({
        code: 'INSUFFICIENT_STORAGE',
        error: expect.stringMatching(/Not enough disk space/),
      });
    } finally {
      await tight.close();
    }
  });

  it('needs a valid token where tokens are set, and keeps each uploader to its own files', async () => {
    const one = randomBytes(1000);
    const two = randomBytes(1000);
    expect((await putFile(server.url, 'robots/same-name.bin', one, { token: 'wrong-token' })).status).toBe(401);
    expect((await putFile(server.url, 'robots/same-name.bin', one, { token: ROBOT1 })).status).toBe(201);
    expect((await putFile(server.url, 'robots/same-name.bin', two, { token: ROBOT2 })).status).toBe(201);
    expect(Buffer.compare(await readFile(server.completedPath('robot1', 'robots/same-name.bin')), one)).toBe(0);
    expect(Buffer.compare(await readFile(server.completedPath('robot2', 'robots/same-name.bin')), two)).toBe(0);
    expect(
      (await call(server.url, 'GET', routes.file('robots/same-name.bin'), undefined, { token: ROBOT2 })).json,
    ).toMatchObject({ sha256: sha256Of(two) });
    // Robot 2 sending robot 1's content is stored for robot 2 only, not "already stored".
    expect((await putFile(server.url, 'robots/only-one.bin', one, { token: ROBOT1 })).status).toBe(201);
    expect(
      (await call(server.url, 'GET', routes.file('robots/only-one.bin'), undefined, { token: ROBOT2 })).status,
    ).toBe(404);
    expect((await putFile(server.url, 'robots/only-one.bin', one, { token: ROBOT2 })).status).toBe(201);
  });

  it('counts against the create rate limit (429 with Retry-After)', async () => {
    const limited = await startTestServer({ rateLimit: true, rateLimitSessions: 2 });
    try {
      const data = randomBytes(100);
      expect((await putFile(limited.url, 'a.bin', data)).status).toBe(201);
      expect(
        (
          await call(limited.url, 'POST', routes.sessions, {
            path: 'b.bin',
            size: 10,
            fingerprint: `fp1:${'0'.repeat(64)}`,
          })
        ).status,
      ).toBe(201);
      const refused = await putFile(limited.url, 'c.bin', data);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.json).toMatchObject({ code: 'RATE_LIMITED' });
    } finally {
      await limited.close();
    }
  });

  it('concurrent puts of one path: the same content is stored once, a different one is refused', async () => {
    const data = randomBytes(300_000);
    const same = await Promise.all([1, 2, 3].map(() => putFile(server.url, 'race/same.bin', data)));
    expect(same.map((a) => a.status).sort()).toEqual([200, 200, 201]);
    const a = randomBytes(300_000);
    const b = randomBytes(300_000);
    const different = await Promise.all([
      putFile(server.url, 'race/diff.bin', a),
      putFile(server.url, 'race/diff.bin', b),
    ]);
    expect(different.map((x) => x.status).sort()).toEqual([201, 409]);
    const winner = different.find((x) => x.status === 201)!.json.sha256;
    expect(sha256Of(await readFile(server.completedPath('anonymous', 'race/diff.bin')))).toBe(winner);
    expect((await call(server.url, 'GET', routes.file('race/diff.bin'))).json).toMatchObject({ sha256: winner });
    expect(await tempEntries()).toEqual([]);
  });

  it('leaves an open session for the same path alone', async () => {
    const local = path.join(files.path, 'session-open.bin');
    await writeFile(local, randomBytes(3000));
    const created = await createSession(server.url, local, { path: 'open/s.bin' });
    const id = created.json.id as string;
    expect((await putFile(server.url, 'open/s.bin', randomBytes(200))).status).toBe(201);
    expect((await call(server.url, 'GET', routes.session(id))).json).toMatchObject({ state: 'open', id });
  });

  it('logs the start and the completion like other uploads', async () => {
    const data = randomBytes(2048);
    await putFile(server.url, 'logged/one.bin', data, { token: ROBOT1 });
    const started = await waitFor(
      () => logs.entries().find((e) => e.event === 'upload_started' && e.path === 'logged/one.bin'),
      'the start line',
    );
    expect(started).toMatchObject({ uploader: 'robot1', size: 2048, chunks: 1 });
    const completed = await waitFor(
      () => logs.entries().find((e) => e.event === 'upload_completed' && e.path === 'logged/one.bin'),
      'the completion line',
    );
    expect(completed).toMatchObject({ uploader: 'robot1', size: 2048, sha256: sha256Of(data), deduplicated: false });
    expect(logs.text()).not.toContain(ROBOT1);
  });
});
