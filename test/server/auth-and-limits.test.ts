import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadServer } from '../../server/index.js';
import { routes } from '../../common/protocol/native-protocol.js';
import { captureLogger, type CapturedLogs } from '../helpers/capture-logger.js';
import { call, createSession, putChunk, readChunk, uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { legacyGet, legacyPost, legacyUploadFile } from '../helpers/legacy-client.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { testToken } from '../helpers/tokens.js';

const ROBOT1 = testToken('auth robot1');
const ROBOT2 = testToken('auth robot2');
let files: TempDir;
let logs: CapturedLogs;
let server: TestServer;

beforeAll(async () => {
  files = await createTempDir('auth-files');
  const tokensFile = path.join(files.path, 'tokens.yaml');
  await writeFile(tokensFile, `robot1: ${ROBOT1}\n`);
  logs = captureLogger('debug');
  server = await startTestServer({ tokensFile, tokens: [`robot2=${ROBOT2}`], logger: logs.logger });
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

describe('auth', () => {
  it('needs a valid bearer token on every route but /health (401 with the JSON error)', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const missing = await legacyPost(server.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 });
    expect(missing.status).toBe(401);
    expect(missing.json).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await legacyPost(
      server.url,
      '/upload/init',
      { filename: 'a.bag', filesize: 1, chunks: 1 },
      'not-a-valid-token',
    );
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('The bearer token is not valid');
    const basic = await fetch(`${server.url}/v1/sessions/x`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    expect((await call(server.url, 'GET', routes.session('x'), undefined, { token: ROBOT1 })).status).toBe(404);
  });

  it('keeps each uploader to its own sessions and files, and files of the same name apart', async () => {
    const file = path.join(files.path, 'shared-name.bin');
    await writeRandomFile(file, 3 * 1024 * 1024);
    const created = await createSession(
      server.url,
      file,
      { path: 'run/shared-name.bin', chunkSize: 1024 * 1024 },
      { token: ROBOT1 },
    );
    const id = created.json.id as string;
    const chunk = await readChunk(file, 0, 1024 * 1024, 3 * 1024 * 1024);
    expect((await call(server.url, 'GET', routes.session(id), undefined, { token: ROBOT2 })).status).toBe(404);
    expect((await putChunk(server.url, id, 0, chunk, { token: ROBOT2 })).status).toBe(404);
    expect(
      (await call(server.url, 'POST', routes.complete(id), { sha256: '0'.repeat(64) }, { token: ROBOT2 })).status,
    ).toBe(404);
    expect((await call(server.url, 'DELETE', routes.session(id), undefined, { token: ROBOT2 })).status).toBe(404);
    expect((await call(server.url, 'GET', routes.session(id), undefined, { token: ROBOT1 })).status).toBe(200);
    const one = await uploadFile(server.url, file, 'run/shared-name.bin', { token: ROBOT1 });
    expect(one.complete.status).toBe(200);
    expect(
      (await call(server.url, 'GET', routes.file('run/shared-name.bin'), undefined, { token: ROBOT2 })).status,
    ).toBe(404);
    const other = path.join(files.path, 'other.bin');
    const otherSha = await writeRandomFile(other, 1000);
    const two = await uploadFile(server.url, other, 'run/shared-name.bin', { token: ROBOT2 });
    expect(two.complete.json).toMatchObject({ state: 'complete', sha256: otherSha });
    expect(await sha256OfFile(server.completedPath('robot2', 'run/shared-name.bin'))).toBe(otherSha);
    expect(await sha256OfFile(server.completedPath('robot1', 'run/shared-name.bin'))).toBe(one.complete.json.sha256);
    const legacyStatus = await legacyGet(server.url, `/upload/status/${id}`, ROBOT1);
    expect(legacyStatus.status).toBe(404);
  });

  it('native: a different file at a stored path is 409 FILE_EXISTS unless replace is set', async () => {
    const a = path.join(files.path, 'replace-a.bin');
    const b = path.join(files.path, 'replace-b.bin');
    await writeRandomFile(a, 5000);
    const shaB = await writeRandomFile(b, 6000);
    expect((await uploadFile(server.url, a, 'replace/me.bin', { token: ROBOT1 })).complete.status).toBe(200);
    const refused = await createSession(server.url, b, { path: 'replace/me.bin' }, { token: ROBOT1 });
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'FILE_EXISTS' });
    const created = await createSession(server.url, b, { path: 'replace/me.bin', replace: true }, { token: ROBOT1 });
    expect(created.status).toBe(201);
    const replaced = await uploadFile(server.url, b, 'replace/me.bin', { token: ROBOT1, create: { replace: true } });
    expect(replaced.complete.json).toMatchObject({ sha256: shaB });
  });

  it("GET /uploads needs a token and lists only the caller's files, with relative paths", async () => {
    const file = path.join(files.path, 'listed.bag');
    await writeRandomFile(file, 2000);
    await legacyUploadFile(server.url, file, 'listed.bag', { chunks: 2, token: ROBOT2 });
    expect((await legacyGet(server.url, '/uploads')).status).toBe(401);
    const listing = await legacyGet(server.url, '/uploads', ROBOT2);
    expect(listing.status).toBe(200);
    const uploads = listing.json.uploads as { filename: string; file_path: string }[];
    expect(uploads.map((u) => u.filename).sort()).toEqual(['listed.bag', 'run/shared-name.bin']);
    expect(uploads.find((u) => u.filename === 'listed.bag')!.file_path).toBe('completed/robot2/listed.bag');
    const text = JSON.stringify(listing.json);
    expect(text).not.toContain(server.uploadDir);
    expect(text).not.toContain(ROBOT2);
  });

  it('never logs a token', () => {
    const all = logs.text();
    expect(all).toContain('upload_completed');
    expect(all).not.toContain(ROBOT1);
    expect(all).not.toContain(ROBOT2);
  });
});

describe('secure by default', () => {
  it('refuses to start on a non-loopback address without tokens (before binding anything)', async () => {
    const dir = await createTempDir('secure-default');
    try {
      await expect(
        createUploadServer({ host: '0.0.0.0', port: 0, uploadDir: dir.path, logLevel: 'silent' }),
      ).rejects.toThrow(/Refusing to listen on 0\.0\.0\.0 without tokens/);
      await expect(
        createUploadServer({
          host: '127.0.0.1',
          port: 0,
          uploadDir: dir.path,
          logLevel: 'silent',
          tokens: [`bad name=${testToken('bad name')}`],
        }),
      ).rejects.toThrow(/Invalid uploader name/);
    } finally {
      await dir.remove();
    }
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After and the JSON error once a limit is reached; /health is exempt', async () => {
    const limited = await startTestServer({ rateLimit: true, rateLimitInit: 3, rateLimitNative: 2 });
    try {
      for (let i = 0; i < 3; i += 1)
        expect(
          (await legacyPost(limited.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 })).status,
        ).toBe(200);
      const refused = await legacyPost(limited.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 });
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ success: false, code: 'RATE_LIMITED' });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      expect(refused.json.retryAfter).toBe(retryAfter);
      // The message names the server setting that raises the limit (the robot's operator passes it on).
      expect(refused.json.error).toMatch(
        /limit for POST \/upload\/init is 3 per hour.*--rate-limit-init \(UPLOAD_SERVER_RATE_LIMIT_INIT\) raises it/,
      );
      await call(limited.url, 'GET', routes.session('a'));
      await call(limited.url, 'GET', routes.session('b'));
      const native = await call(limited.url, 'GET', routes.session('c'));
      expect(native.status).toBe(429);
      expect(native.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(native.json.error).toContain('--rate-limit-native');
      for (let i = 0; i < 300; i += 1) expect((await fetch(`${limited.url}/health`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('counts per uploader when tokens are used, so robots behind one address are not throttled together', async () => {
    const limited = await startTestServer({
      rateLimit: true,
      rateLimitInit: 2,
      tokens: [`robot1=${ROBOT1}`, `robot2=${ROBOT2}`],
    });
    try {
      for (const token of [ROBOT1, ROBOT1, ROBOT2, ROBOT2])
        expect(
          (await legacyPost(limited.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 }, token)).status,
        ).toBe(200);
      expect(
        (await legacyPost(limited.url, '/upload/init', { filename: 'a.bag', filesize: 1, chunks: 1 }, ROBOT1)).status,
      ).toBe(429);
    } finally {
      await limited.close();
    }
  });
});

describe('limits per uploader (bytes per second)', () => {
  const fingerprint = (n: number): string => `fp1:${n.toString(16).padStart(64, '0')}`;

  it('counts native requests only without credentials: a token holder is not limited by request counts', async () => {
    const limited = await startTestServer({
      rateLimit: true,
      rateLimitChunks: 2,
      rateLimitSessions: 2,
      rateLimitNative: 2,
      allowAnonymous: true,
      tokens: [`robot1=${ROBOT1}`],
    });
    try {
      const data = Buffer.alloc(1024, 7);
      const created = await call<{ id: string }>(
        limited.url,
        'POST',
        routes.sessions,
        { path: 'counted.bin', size: 1024 * 10, fingerprint: fingerprint(1), chunkSize: 1024 },
        { token: ROBOT1 },
      );
      expect(created.status).toBe(201);
      for (let i = 0; i < 10; i += 1) {
        expect((await putChunk(limited.url, created.json.id, i, data, { token: ROBOT1 })).status).toBe(200);
        expect(
          (await call(limited.url, 'GET', routes.session(created.json.id), undefined, { token: ROBOT1 })).status,
        ).toBe(200);
      }
      // Without credentials the same routes are counted per address, and the refusal names the option.
      const anonymous = await call<{ id: string }>(limited.url, 'POST', routes.sessions, {
        path: 'anonymous.bin',
        size: 1024 * 10,
        fingerprint: fingerprint(2),
        chunkSize: 1024,
      });
      expect(anonymous.status).toBe(201);
      expect((await putChunk(limited.url, anonymous.json.id, 0, data)).status).toBe(200);
      expect((await putChunk(limited.url, anonymous.json.id, 1, data)).status).toBe(200);
      const refused = await putChunk(limited.url, anonymous.json.id, 2, data);
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ code: 'RATE_LIMITED' });
      expect(String(refused.json.error)).toContain(
        "the server's --rate-limit-chunks (UPLOAD_SERVER_RATE_LIMIT_CHUNKS) raises it",
      );
    } finally {
      await limited.close();
    }
  });

  it("refuses an uploader's bytes past rateLimitUploadRate (a minute's budget) with a 429 naming it", async () => {
    const limited = await startTestServer({
      rateLimit: true,
      rateLimitUploadRate: 1,
      tokens: [`robot1=${ROBOT1}`, `robot2=${ROBOT2}`],
    });
    try {
      const chunkSize = 8 * 1024 * 1024;
      const data = Buffer.alloc(chunkSize, 3);
      const create = (token: string) =>
        call<{ id: string }>(
          limited.url,
          'POST',
          routes.sessions,
          { path: 'big.bin', size: chunkSize * 10, fingerprint: fingerprint(3), chunkSize },
          { token },
        );
      const one = await create(ROBOT1);
      expect(one.status).toBe(201);
      // 1 MiB/s over a minute is 60 MiB: seven 8 MiB chunks fit, the eighth does not.
      for (let i = 0; i < 7; i += 1)
        expect((await putChunk(limited.url, one.json.id, i, data, { token: ROBOT1 })).status).toBe(200);
      const refused = await putChunk(limited.url, one.json.id, 7, data, { token: ROBOT1 });
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ code: 'RATE_LIMITED' });
      expect(String(refused.json.error)).toContain(
        "the server's --rate-limit-upload-rate (UPLOAD_SERVER_RATE_LIMIT_UPLOAD_RATE) raises it",
      );
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // The refused chunk was not stored; another uploader has its own budget.
      const status = await call<{ received: number[] }>(limited.url, 'GET', routes.session(one.json.id), undefined, {
        token: ROBOT1,
      });
      expect(status.json.received).toEqual([0, 1, 2, 3, 4, 5, 6]);
      const two = await create(ROBOT2);
      expect((await putChunk(limited.url, two.json.id, 0, data, { token: ROBOT2 })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
