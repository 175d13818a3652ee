import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprintFile } from '../../common/protocol/fingerprint.js';
import { createUploadServer } from '../../server/index.js';
import { legacyChunk, legacyGet, legacyPost } from '../helpers/legacy-client.js';
import { call, createSession, putChunk } from '../helpers/native-upload.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * The session database as servers wrote it before the schema was versioned (version 0): no
 * `meta` table, and the legacy API's sessions stored with `api = 'seed'`. Written here by raw
 * SQL, so the test keeps describing that file whatever the current code does.
 */
const VERSION_0_SCHEMA = `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, api TEXT NOT NULL, uploader TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
  fingerprint TEXT, chunk_size INTEGER, chunk_count INTEGER NOT NULL, sha256_hint TEXT, md5_expected TEXT,
  metadata TEXT, replace_existing INTEGER NOT NULL DEFAULT 0, compress INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, result TEXT
);
CREATE INDEX sessions_by_path ON sessions (uploader, path, state);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE TABLE chunks (
  session_id TEXT NOT NULL, idx INTEGER NOT NULL, size INTEGER NOT NULL, crc INTEGER NOT NULL, offset INTEGER,
  PRIMARY KEY (session_id, idx)
) WITHOUT ROWID;
CREATE TABLE files (
  uploader TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL, md5 TEXT,
  fingerprint TEXT NOT NULL, completed_at INTEGER NOT NULL, metadata TEXT, compressed_size INTEGER, session_id TEXT,
  PRIMARY KEY (uploader, path)
) WITHOUT ROWID;
`;

const LEGACY_ID = '0b6c1c3e-5d0f-4f6e-9a55-2f1b7e3c9d01';
const NATIVE_ID = '7e2a9c44-1b3d-4c8e-8f20-6a5d3e1b0c02';
const CHUNK = 1024; // the smallest native chunk size

let dir: TempDir | undefined;
let server: TestServer | undefined;

afterEach(async () => {
  await server?.close({ keepFiles: true });
  server = undefined;
  await dir?.remove();
  dir = undefined;
});

function content(size: number, salt: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + salt) & 0xff));
}

const crc = (data: Buffer): number => zlib.crc32(data) >>> 0;

describe('session database schema', () => {
  it('opens a database from before schema versions, migrates it, and resumes its sessions of both APIs', async () => {
    dir = await createTempDir('schema-v0');
    const uploadDir = path.join(dir.path, 'storage');
    const legacyData = content(3 * CHUNK, 7);
    const nativeData = content(3 * CHUNK, 11);
    const nativeFile = path.join(dir.path, 'native.bin');
    await writeFile(nativeFile, nativeData);
    const fingerprint = await fingerprintFile(nativeFile);

    // The database and temp/ as the server left them: a legacy upload with chunks 0 and 1
    // received (each in its own blob, not yet appended), a native one with chunk 0 in `data`.
    await mkdir(path.join(uploadDir, 'state'), { recursive: true });
    const db = new Database(path.join(uploadDir, 'state', 'uploads.db'));
    db.exec(VERSION_0_SCHEMA);
    const now = Date.now();
    const insert =
      db.prepare(`INSERT INTO sessions (id, api, uploader, path, size, fingerprint, chunk_size, chunk_count, state,
      created_at, updated_at, expires_at)
      VALUES (?, ?, 'anonymous', ?, ?, ?, ?, 3, 'open', ?, ?, ?)`);
    insert.run(LEGACY_ID, 'seed', 'old/legacy.bin', legacyData.length, null, null, now, now, now + 86_400_000);
    insert.run(
      NATIVE_ID,
      'native',
      'old/native.bin',
      nativeData.length,
      fingerprint,
      CHUNK,
      now,
      now,
      now + 86_400_000,
    );
    const chunk = db.prepare('INSERT INTO chunks (session_id, idx, size, crc, offset) VALUES (?, ?, ?, ?, NULL)');
    for (const index of [0, 1])
      chunk.run(LEGACY_ID, index, CHUNK, crc(legacyData.subarray(index * CHUNK, (index + 1) * CHUNK)));
    chunk.run(NATIVE_ID, 0, CHUNK, crc(nativeData.subarray(0, CHUNK)));
    db.close();
    await mkdir(path.join(uploadDir, 'temp', LEGACY_ID), { recursive: true });
    await writeFile(path.join(uploadDir, 'temp', LEGACY_ID, 'data'), '');
    for (const index of [0, 1])
      await writeFile(
        path.join(uploadDir, 'temp', LEGACY_ID, `chunk-${index}`),
        legacyData.subarray(index * CHUNK, (index + 1) * CHUNK),
      );
    await mkdir(path.join(uploadDir, 'temp', NATIVE_ID), { recursive: true });
    await writeFile(path.join(uploadDir, 'temp', NATIVE_ID, 'data'), nativeData.subarray(0, CHUNK));

    server = await startTestServer({ uploadDir });

    // The legacy session is still a legacy one: its status route knows it, the native one does not.
    expect((await legacyGet(server.url, `/upload/status/${LEGACY_ID}`)).json).toMatchObject({
      received_indexes: [0, 1],
      state: 'uploading',
    });
    expect((await call(server.url, 'GET', `/v1/sessions/${LEGACY_ID}`)).status).toBe(404);
    expect((await legacyChunk(server.url, LEGACY_ID, 2, 3, legacyData.subarray(2 * CHUNK))).status).toBe(200);
    const md5 = createHash('md5').update(legacyData).digest('hex');
    const finalized = await legacyPost(server.url, '/upload/finalize', { upload_id: LEGACY_ID, checksum: md5 });
    expect(finalized.status, JSON.stringify(finalized.json)).toBe(200);
    expect(await readFile(server.completedPath('anonymous', 'old/legacy.bin'))).toEqual(legacyData);

    // The native session resumes by its identity, with the chunk it held.
    const resumed = await createSession(server.url, nativeFile, { path: 'old/native.bin', chunkSize: CHUNK });
    expect(resumed.status).toBe(200);
    expect(resumed.json).toMatchObject({ id: NATIVE_ID, resumed: true, received: [0] });
    for (const index of [1, 2])
      expect(
        (await putChunk(server.url, NATIVE_ID, index, nativeData.subarray(index * CHUNK, (index + 1) * CHUNK))).status,
      ).toBe(200);
    const sha256 = createHash('sha256').update(nativeData).digest('hex');
    expect((await call(server.url, 'POST', `/v1/sessions/${NATIVE_ID}/complete`, { sha256 })).status).toBe(200);
    expect(await readFile(server.completedPath('anonymous', 'old/native.bin'))).toEqual(nativeData);

    await server.close({ keepFiles: true });
    server = undefined;
    const migrated = new Database(path.join(uploadDir, 'state', 'uploads.db'), { readonly: true });
    try {
      expect(migrated.prepare(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get()).toBe('2');
      expect(migrated.prepare(`SELECT api FROM sessions WHERE id = ?`).pluck().get(LEGACY_ID)).toBe('legacy');
    } finally {
      migrated.close();
    }
  });

  it('refuses a database written by a newer version, naming the file and both versions', async () => {
    dir = await createTempDir('schema-newer');
    await mkdir(path.join(dir.path, 'state'), { recursive: true });
    const file = path.join(dir.path, 'state', 'uploads.db');
    const db = new Database(file);
    db.exec(
      'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); ' +
        "INSERT INTO meta VALUES ('schema_version', '99');",
    );
    db.close();
    await expect(
      createUploadServer({ host: '127.0.0.1', port: 0, uploadDir: dir.path, logLevel: 'silent' }),
    ).rejects.toMatchObject({
      code: 'STATE_DIR',
      message: expect.stringMatching(
        new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*newer version.*schema 99.*up to 2`),
      ),
    });
  });
});
