import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { routes } from '../../common/protocol/native-protocol.js';
import { LocalDiskStorage, type PartPlace, type SessionStore } from '../../server/index.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { call, openSession, putChunk, receivedChunks } from '../helpers/native-upload.js';
import { threeChunkFile, withPrefix } from '../helpers/prefixed-chunks.js';
import { sha256OfFile } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A pipelining client's chunk n + 1 waits on the server for chunk n to be written and checked,
 * not for n's acknowledgement (a database commit and an fsync): it streams in meanwhile, hashed
 * from n's fork, and is acknowledged after n. The real server and its SQLite store, with a
 * decorator that holds (or fails) chunk 0's acknowledgement until the test lets it go, and a
 * storage decorator that records which chunks were written.
 */
const MiB = 1024 * 1024;
const CHUNK = MiB;

/** The local disk, recording the index of every chunk written in place. */
class WatchedStorage extends FaultyStorage {
  readonly written: number[] = [];

  override async writePart(id: string, part: PartPlace, body: AsyncIterable<Uint8Array>): Promise<number> {
    const bytes = await super.writePart(id, part, body);
    this.written.push(part.index);
    return bytes;
  }
}

/** Acknowledgements of the chunk indexes in `hold`, waiting until the test releases or fails them. */
const hold = new Set<number>();
const held: { index: number; release: () => void; fail: (error: Error) => void }[] = [];

function holdingAcks(store: SessionStore): SessionStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'ackChunk') {
        const ackChunk: SessionStore['ackChunk'] = async (id, chunk, ...rest) => {
          if (hold.has(chunk.index)) {
            await new Promise<void>((release, fail) => held.push({ index: chunk.index, release, fail }));
          }
          return target.ackChunk(id, chunk, ...rest);
        };
        return ackChunk;
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

let storageDir: TempDir;
let files: TempDir;
let storage: WatchedStorage;
let server: TestServer;

beforeAll(async () => {
  storageDir = await createTempDir('ack-overlap');
  files = await createTempDir('ack-overlap-files');
  storage = new WatchedStorage(await LocalDiskStorage.open(storageDir.path));
  server = await startTestServer({ uploadDir: storageDir.path, storage, decorateStore: holdingAcks });
});
afterAll(async () => {
  for (const ack of held.splice(0)) ack.release();
  await server?.close();
  await storageDir?.remove();
  await files?.remove();
});
beforeEach(() => {
  hold.clear();
  storage.written.length = 0;
});

/** Sends chunk 0, waits until its acknowledgement is held, then sends chunk 1 and waits until it was written. */
async function secondWhileFirstIsAcknowledged(id: string, chunks: Buffer[], prefixes: string[]) {
  hold.add(0);
  const first = putChunk(server.url, id, 0, chunks[0]!, withPrefix(prefixes[0]!));
  const ack = await waitFor(() => held.find((entry) => entry.index === 0), "chunk 0's acknowledgement held");
  // A wrong CRC claim: only a chunk hashed from chunk 0's fork (checked by its prefix) passes with it.
  const second = putChunk(server.url, id, 1, chunks[1]!, { checksum: 'crc32:00000000', ...withPrefix(prefixes[1]!) });
  await waitFor(() => storage.written.includes(1), 'chunk 1 written while chunk 0 is being acknowledged');
  expect(held.includes(ack)).toBe(true);
  expect(await receivedChunks(server.url, id)).toEqual([]);
  held.splice(held.indexOf(ack), 1);
  return { first, second, ack };
}

describe('a chunk streams in while the one before it is acknowledged', () => {
  it('is written and checked from the fork of the chunk before, acknowledged after it; the file verifies', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'overlap.bin', CHUNK, 777);
    const id = await openSession(server.url, file, 'overlap/overlap.bin', CHUNK);
    const { first, second, ack } = await secondWhileFirstIsAcknowledged(id, chunks, prefixes);
    ack.release();
    const [zero, one] = await Promise.all([first, second]);
    expect([zero.status, one.status]).toEqual([200, 200]);
    expect(one.json).toMatchObject({ index: 1, duplicate: false, receivedCount: 2 });
    expect(await receivedChunks(server.url, id)).toEqual([0, 1]);
    expect((await putChunk(server.url, id, 2, chunks[2]!, withPrefix(prefixes[2]!))).status).toBe(200);
    const done = await call(server.url, 'POST', routes.complete(id), { sha256: prefixes[2] });
    expect(done.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'overlap/overlap.bin'))).toBe(prefixes[2]);
  });

  it('when the acknowledgement before it fails, it is not stored either (503); both can be sent again', async () => {
    const { file, chunks, prefixes } = await threeChunkFile(files.path, 'failed-ack.bin', CHUNK, 777);
    const id = await openSession(server.url, file, 'overlap/failed-ack.bin', CHUNK);
    const { first, second, ack } = await secondWhileFirstIsAcknowledged(id, chunks, prefixes);
    ack.fail(new Error('simulated: the database could not commit'));
    const [zero, one] = await Promise.all([first, second]);
    expect(zero.status).toBeGreaterThanOrEqual(500);
    expect(one.status).toBe(503);
    expect(one.json).toMatchObject({ success: false, code: 'SERVER_UNAVAILABLE' });
    expect(String(one.json.error)).toMatch(
      /chunk 1 arrived while chunk 0 was being recorded, which failed.*send it again/,
    );
    expect(await receivedChunks(server.url, id)).toEqual([]);
    hold.clear();
    for (const [i, chunk] of chunks.entries())
      expect((await putChunk(server.url, id, i, chunk, withPrefix(prefixes[i]!))).status).toBe(200);
    const done = await call(server.url, 'POST', routes.complete(id), { sha256: prefixes[2] });
    expect(done.status).toBe(200);
    expect(await sha256OfFile(server.completedPath('anonymous', 'overlap/failed-ack.bin'))).toBe(prefixes[2]);
  });
});
