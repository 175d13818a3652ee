import { randomBytes } from 'node:crypto';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as protocolHeaders, routes } from '../../common/protocol/native-protocol.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { legacyGet } from '../helpers/legacy-client.js';
import { call, createSession } from '../helpers/native-upload.js';
import { sha256Of } from '../helpers/random-file.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const TOKEN = 'reconcile-token-0123456789abcdef0123456789';
const auth = { token: TOKEN };
let dir: TempDir;
let uploadDir: string;

beforeAll(async () => {
  dir = await createTempDir('reconcile');
  uploadDir = path.join(dir.path, 'store');
  await mkdir(path.join(dir.path, 'files'));
});
afterAll(async () => {
  await dir?.remove();
});

const start = (logger = captureLogger()): Promise<TestServer> =>
  startTestServer({ uploadDir, tokens: [`robot=${TOKEN}`], logger: logger.logger });

async function put(server: TestServer, relativePath: string, data: Buffer, metadata?: unknown) {
  return call(server.url, 'PUT', routes.file(relativePath), data, {
    ...auth,
    headers: {
      'content-type': 'application/octet-stream',
      [protocolHeaders.contentSha256]: sha256Of(data),
      ...(metadata
        ? { [protocolHeaders.uploadMetadata]: Buffer.from(JSON.stringify(metadata)).toString('base64url') }
        : {}),
    },
  });
}

describe('the index of stored files is reconciled with completed/ at start-up', () => {
  it(
    'adopts files it does not know, re-indexes changed ones, drops entries whose file is gone, ' + 'and logs each',
    async () => {
      const first = await start();
      const kept = randomBytes(4000);
      const replaced = randomBytes(5000);
      const deleted = randomBytes(6000);
      expect((await put(first, 'bag/kept.bin', kept, { robot: 'r1' })).status).toBe(201);
      expect((await put(first, 'bag/replaced.bin', replaced)).status).toBe(201);
      expect((await put(first, 'bag/deleted.bin', deleted)).status).toBe(201);
      await first.close({ keepFiles: true });

      // While the server is down: a file arrives that the index never saw (as when a power cut
      // falls between the commit and its index entry), one is replaced by content of the same
      // size, one is deleted by hand.
      const completed = path.join(uploadDir, 'completed', 'robot');
      const adopted = randomBytes(7000);
      await writeFile(path.join(completed, 'bag', 'adopted.bin'), adopted);
      const newContent = randomBytes(5000);
      await writeFile(path.join(completed, 'bag', 'replaced.bin'), newContent);
      await rm(path.join(completed, 'bag', 'deleted.bin'));

      const logs = captureLogger();
      const second = await start(logs);
      try {
        const events = logs.entries().map((entry) => [entry.event, entry.path]);
        expect(events).toContainEqual(['index_adopted', 'bag/adopted.bin']);
        expect(events).toContainEqual(['index_reindexed', 'bag/replaced.bin']);
        expect(events).toContainEqual(['index_dropped', 'bag/deleted.bin']);
        expect(logs.entries().find((entry) => entry.event === 'index_reconciled')).toMatchObject({
          files: 3,
          adopted: 1,
          reindexed: 1,
          dropped: 1,
          level: 40,
        });

        expect((await call(second.url, 'GET', routes.file('bag/adopted.bin'), undefined, auth)).json).toMatchObject({
          state: 'complete',
          size: 7000,
          sha256: sha256Of(adopted),
        });
        expect((await call(second.url, 'GET', routes.file('bag/replaced.bin'), undefined, auth)).json).toMatchObject({
          sha256: sha256Of(newContent),
        });
        expect((await call(second.url, 'GET', routes.file('bag/deleted.bin'), undefined, auth)).status).toBe(404);
        const listing = await legacyGet(second.url, '/uploads', TOKEN);
        expect(
          (listing.json.uploads as { filename: string; metadata: unknown }[])
            .map((u) => [u.filename, u.metadata])
            .sort(),
        ).toEqual([
          ['bag/adopted.bin', null],
          ['bag/kept.bin', { robot: 'r1' }],
          ['bag/replaced.bin', null],
        ]);
        // The adopted file, sent again, is "complete" (never 409 FILE_EXISTS); so is the re-indexed one.
        for (const [name, data] of [
          ['adopted.bin', adopted],
          ['replaced.bin', newContent],
        ] as const) {
          const local = path.join(dir.path, 'files', name);
          await writeFile(local, data);
          const again = await createSession(second.url, local, { path: `bag/${name}` }, auth);
          expect(again.status).toBe(200);
          expect(again.json).toMatchObject({ state: 'complete', sha256: sha256Of(data) });
        }
      } finally {
        await second.close({ keepFiles: true });
      }

      // Nothing changed since: the next start reads no file and logs no reconciliation.
      const quiet = captureLogger();
      const third = await start(quiet);
      await third.close({ keepFiles: true });
      expect(quiet.entries().filter((entry) => String(entry.event).startsWith('index_'))).toEqual([]);
    },
  );

  it(
    'a file changed after the last start is hashed again even at the same size and time stamps, ' +
      'and an unchanged one is not',
    async () => {
      const first = await start();
      const data = randomBytes(3000);
      expect((await put(first, 'same/size.bin', data)).status).toBe(201);
      await first.close({ keepFiles: true });
      // Same size, old modification time restored: only the change time (ctime) tells.
      const file = path.join(uploadDir, 'completed', 'robot', 'same', 'size.bin');
      const other = randomBytes(3000);
      await writeFile(file, other);
      await utimes(file, new Date(2020, 0, 1), new Date(2020, 0, 1));
      const logs = captureLogger();
      const second = await start(logs);
      try {
        expect(logs.entries().map((entry) => [entry.event, entry.path])).toContainEqual([
          'index_reindexed',
          'same/size.bin',
        ]);
        expect((await call(second.url, 'GET', routes.file('same/size.bin'), undefined, auth)).json).toMatchObject({
          sha256: sha256Of(other),
        });
      } finally {
        await second.close({ keepFiles: true });
      }
    },
  );

  it(
    'a stored file that appears while the server runs is hashed and indexed when a create meets ' +
      'it: the same content is "complete", not 409',
    async () => {
      const server = await start();
      try {
        const data = randomBytes(9000);
        const target = path.join(uploadDir, 'completed', 'robot', 'live', 'dropped-in.bin');
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, data);
        const local = path.join(dir.path, 'files', 'dropped-in.bin');
        await writeFile(local, data);
        const created = await createSession(server.url, local, { path: 'live/dropped-in.bin' }, auth);
        expect(created.status).toBe(200);
        expect(created.json).toMatchObject({ state: 'complete', size: 9000, sha256: sha256Of(data) });
        // A different file there is still refused.
        await writeFile(local, randomBytes(9000));
        expect((await createSession(server.url, local, { path: 'live/dropped-in.bin' }, auth)).json).toMatchObject({
          code: 'FILE_EXISTS',
        });
      } finally {
        await server.close({ keepFiles: true });
      }
    },
  );
});
