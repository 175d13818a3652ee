import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers, routes } from '../../common/protocol/native-protocol.js';
import { NodePrefixHash, type PrefixHash } from '../../server/integrity/prefix-hash.js';
import { SavedPrefixHash } from '../../server/integrity/saved-prefix-hash.js';
import { call, openSession, putChunk, receivedChunks } from '../helpers/native-upload.js';
import { threeChunkFile, withPrefix } from '../helpers/prefixed-chunks.js';
import { sha256OfFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const MiB = 1024 * 1024;
const CHUNK = 1 * MiB;

let server: TestServer;
let files: TempDir;

beforeAll(async () => {
  server = await startTestServer();
  files = await createTempDir('prefix-check');
});
afterAll(async () => {
  await server?.close();
  await files?.remove();
});

describe('chunks checked by the SHA-256 of the file through them (x-chunk-prefix-sha256)', () => {
  it('stores a file sent in order with its prefix digests byte-identical', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'in-order.bin', CHUNK, 4321);
    const id = await openSession(server.url, file, 'prefix/in-order.bin', CHUNK);
    for (const [i, chunk] of chunks.entries()) {
      const answer = await putChunk(server.url, id, i, chunk, withPrefix(prefixes[i]!.toUpperCase()));
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({ index: i, duplicate: false });
    }
    const done = await call(server.url, 'POST', routes.complete(id), { sha256: prefixes[2] });
    expect(done.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'prefix/in-order.bin'))).toBe(prefixes[2]);
  });

  it('refuses a chunk next in order with another prefix digest (422), then takes it by its CRC', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'wrong-prefix.bin', CHUNK, 4321);
    const id = await openSession(server.url, file, 'prefix/wrong-prefix.bin', CHUNK);
    const wrong = createHash('sha256').update('another file').digest('hex');
    const refused = await putChunk(server.url, id, 0, chunks[0]!, withPrefix(wrong));
    expect(refused.status).toBe(422);
    expect(refused.json).toMatchObject({ code: 'CHUNK_CHECKSUM_MISMATCH' });
    expect(String(refused.json.error)).toContain(`${prefixes[0]} here, ${wrong} as sent`);
    expect(await receivedChunks(server.url, id)).toEqual([]);
    // The same bytes with the CRC alone (what the agent sends on a retry) are stored.
    expect((await putChunk(server.url, id, 0, chunks[0]!)).status).toBe(200);
    expect(await receivedChunks(server.url, id)).toEqual([0]);
    // The prefix continues from the chunk stored by its CRC.
    expect((await putChunk(server.url, id, 1, chunks[1]!, withPrefix(prefixes[1]!))).status).toBe(200);
    expect((await putChunk(server.url, id, 2, chunks[2]!, withPrefix(prefixes[2]!))).status).toBe(200);
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: prefixes[2] })).status).toBe(200);
  });

  it('checks a chunk next in order by its prefix digest, not its CRC (a wrong CRC claim is not read)', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'by-prefix.bin', CHUNK, 4321);
    const id = await openSession(server.url, file, 'prefix/by-prefix.bin', CHUNK);
    const answer = await putChunk(server.url, id, 0, chunks[0]!, {
      checksum: 'crc32:00000000',
      ...withPrefix(prefixes[0]!),
    });
    expect(answer.status).toBe(200);
    expect(await receivedChunks(server.url, id)).toEqual([0]);
  });

  it('checks a chunk ahead of the prefix by its CRC (its prefix digest cannot be checked yet)', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'ahead.bin', CHUNK, 4321);
    const id = await openSession(server.url, file, 'prefix/ahead.bin', CHUNK);
    const wrong = createHash('sha256').update('not the prefix').digest('hex');
    // Ahead of the prefix: a wrong CRC is refused whatever the prefix header says...
    const badCrc = await putChunk(server.url, id, 2, chunks[2]!, {
      checksum: 'crc32:00000000',
      ...withPrefix(prefixes[2]!),
    });
    expect(badCrc.status).toBe(422);
    expect(String(badCrc.json.error)).toContain('failed its checksum');
    // ...and the right CRC is accepted whatever it says.
    expect((await putChunk(server.url, id, 2, chunks[2]!, withPrefix(wrong))).status).toBe(200);
    expect((await putChunk(server.url, id, 0, chunks[0]!, withPrefix(prefixes[0]!))).status).toBe(200);
    expect((await putChunk(server.url, id, 1, chunks[1]!, withPrefix(prefixes[1]!))).status).toBe(200);
    expect((await call(server.url, 'POST', routes.complete(id), { sha256: prefixes[2] })).status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'prefix/ahead.bin'))).toBe(prefixes[2]);
  });

  it('refuses a malformed prefix header with 400 INVALID_FIELD naming it, before reading the body', async () => {
    const { file, chunks } = await threeChunkFile(files.path, 'malformed.bin', CHUNK, 4321);
    const id = await openSession(server.url, file, 'prefix/malformed.bin', CHUNK);
    for (const value of ['abc', 'z'.repeat(64), '0'.repeat(63)]) {
      const answer = await putChunk(server.url, id, 0, chunks[0]!, { headers: { [headers.chunkPrefixSha256]: value } });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ code: 'INVALID_FIELD' });
      expect(String(answer.json.error)).toContain(headers.chunkPrefixSha256);
      expect(String(answer.json.error)).toContain('64 hexadecimal digits');
    }
    expect(await receivedChunks(server.url, id)).toEqual([]);
  });
});

describe("a prefix hash fork's SHA-256 so far (both implementations)", () => {
  it.each([
    ['NodePrefixHash (single server)', async (): Promise<PrefixHash> => new NodePrefixHash(false)],
    ['SavedPrefixHash (replicas)', async (): Promise<PrefixHash> => SavedPrefixHash.load(true, undefined)],
  ])('%s: is the digest of the bytes fed, and the fork goes on hashing after it', async (_, make) => {
    const hash = await make();
    const a = randomBytes(100_000);
    const b = randomBytes(77_777);
    const fork = await hash.fork();
    for (const h of fork.hashes) h.update(a);
    expect(fork.sha256Hex()).toBe(createHash('sha256').update(a).digest('hex'));
    for (const h of fork.hashes) h.update(b);
    const whole = createHash('sha256').update(a).update(b).digest('hex');
    expect(fork.sha256Hex()).toBe(whole);
    expect(hash.adopt(fork, a.length + b.length)).toBe(true);
    expect((await hash.digest()).sha256).toBe(whole);
  });
});

describe('a fork after a fork not yet adopted (both implementations)', () => {
  it.each([
    ['NodePrefixHash (single server)', false, async (): Promise<PrefixHash> => new NodePrefixHash(false)],
    [
      'SavedPrefixHash (replicas, with MD5)',
      true,
      async (): Promise<PrefixHash> => SavedPrefixHash.load(true, undefined),
    ],
  ])(
    '%s: continues from the first fork, is adopted only after it; the digests are the whole prefix',
    async (_, md5, make) => {
      const hash = await make();
      const a = randomBytes(65_536);
      const b = randomBytes(12_345);
      const first = await hash.fork();
      for (const h of first.hashes) h.update(a);
      const second = await hash.forkAfter(first, a.length);
      expect(second.chunkIndex).toBe(1);
      for (const h of second.hashes) h.update(b);
      const whole = createHash('sha256').update(a).update(b).digest('hex');
      expect(second.sha256Hex()).toBe(whole);
      // The first fork is untouched by the second.
      expect(first.sha256Hex()).toBe(createHash('sha256').update(a).digest('hex'));
      expect(hash.adopt(second, b.length)).toBe(false);
      expect(hash.adopt(first, a.length)).toBe(true);
      expect(hash.adopt(second, b.length)).toBe(true);
      expect([hash.chunks, hash.bytes]).toEqual([2, a.length + b.length]);
      const digests = await hash.digest();
      expect(digests.sha256).toBe(whole);
      expect(digests.md5).toBe(md5 ? createHash('md5').update(a).update(b).digest('hex') : undefined);
    },
  );
});
