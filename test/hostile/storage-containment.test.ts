import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as protocolHeaders, routes } from '../../common/protocol/native-protocol.js';
import { createUploadServer } from '../../server/index.js';
import { legacyPost } from '../helpers/legacy-client.js';
import { type Answer, call, createSession, putChunk } from '../helpers/native-upload.js';
import { sha256Of } from '../helpers/random-file.js';
import { spawnServer } from '../helpers/spawn-server.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const TOKEN_A = 'containment-robotA-0123456789abcdef01234567';
const TOKEN_B = 'containment-robotB-0123456789abcdef01234567';
let dir: TempDir;
let outside: string;
let server: TestServer;

beforeAll(async () => {
  dir = await createTempDir('containment');
  outside = path.join(dir.path, 'outside');
  await mkdir(outside);
  server = await startTestServer({
    uploadDir: path.join(dir.path, 'store'),
    tokens: [`robotA=${TOKEN_A}`, `robotB=${TOKEN_B}`],
  });
});
afterAll(async () => {
  await server?.close();
  await dir?.remove();
});

const completed = (...segments: string[]): string => path.join(server.uploadDir, 'completed', ...segments);

function put(relativePath: string, data: Buffer, token: string, replace = false): Promise<Answer> {
  return call(server.url, 'PUT', routes.file(relativePath), data, {
    token,
    headers: {
      'content-type': 'application/octet-stream',
      [protocolHeaders.contentSha256]: sha256Of(data),
      ...(replace ? { [protocolHeaders.uploadReplace]: 'true' } : {}),
    },
  });
}

/** Every file under `folder` with its SHA-256, to show that nothing in it changed. */
async function digestTree(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out[path.relative(folder, file)] = sha256Of(await readFile(file));
  }
  return out;
}

describe('containment per uploader: a symlink in the storage never leads anywhere', () => {
  it(
    "a link from robotA's folder into robotB's cannot be written through, replaced through, or " + 'read through',
    async () => {
      const secret = randomBytes(4000);
      expect((await put('x/target.bin', secret, TOKEN_B)).status).toBe(201);
      await mkdir(completed('robotA'), { recursive: true });
      await symlink('../robotB/x', completed('robotA', 'inB'));
      await symlink('../robotB/x/target.bin', completed('robotA', 'alias.bin'));
      const before = await digestTree(completed('robotB'));

      for (const replace of [false, true]) {
        const written = await put('inB/target.bin', randomBytes(100), TOKEN_A, replace);
        expect(written.status).toBe(400);
        expect(written.json).toMatchObject({
          code: 'INVALID_PATH',
          error:
            'inB is a symbolic link on the server; the server never follows one, so inB/target.bin ' +
            'cannot be stored there',
        });
      }
      const local = path.join(dir.path, 'new.bin');
      await writeFile(local, randomBytes(3000));
      expect((await createSession(server.url, local, { path: 'inB/new.bin' }, { token: TOKEN_A })).json).toMatchObject({
        code: 'INVALID_PATH',
      });
      expect(
        (await legacyPost(server.url, '/upload/init', { filename: 'inB/legacy.bag', filesize: 10, chunks: 1 }, TOKEN_A))
          .json,
      ).toMatchObject({ code: 'INVALID_PATH' });
      // Reading through the links: no lookup, no "already stored" for robotB's content.
      const lookup = await call(server.url, 'GET', routes.file('inB/target.bin'), undefined, { token: TOKEN_A });
      expect(lookup.json.sha256).toBeUndefined();
      const same = await put('alias.bin', secret, TOKEN_A);
      expect(same.status).toBe(400);
      expect(same.json).toMatchObject({
        code: 'INVALID_PATH',
        error: 'alias.bin is a symbolic link on the server; the server never follows one',
      });
      expect(
        (await call(server.url, 'GET', routes.file('alias.bin'), undefined, { token: TOKEN_A })).json.sha256,
      ).toBeUndefined();
      // Replacing it is refused as well (the link is the operator's to remove); robotB's file stays as it was.
      expect((await put('alias.bin', randomBytes(500), TOKEN_A, true)).json.code).toBe('INVALID_PATH');
      expect(await digestTree(completed('robotB'))).toEqual(before);
    },
  );

  it(
    "robotA's whole folder replaced by a link (to robotB's, or outside) stops robotA's uploads " +
      'and reads, and touches nothing there',
    async () => {
      const theirs = randomBytes(2000);
      expect((await put('y/theirs.bin', theirs, TOKEN_B)).status).toBe(201);
      await rename(completed('robotA'), path.join(dir.path, 'robotA-moved'));
      for (const target of [completed('robotB'), outside]) {
        await symlink(target, completed('robotA'));
        const before = await digestTree(completed('robotB'));
        const written = await put('y/theirs.bin', randomBytes(2000), TOKEN_A, true);
        expect(written.status).toBe(400);
        expect(written.json.error).toMatch(/storage folder of uploader robotA is a symbolic link/);
        expect((await put('fresh.bin', theirs, TOKEN_A)).status).toBe(400);
        const read = await call(server.url, 'GET', routes.file('y/theirs.bin'), undefined, { token: TOKEN_A });
        expect(read.json.sha256).toBeUndefined();
        expect(await digestTree(completed('robotB'))).toEqual(before);
        expect(await readdir(outside)).toEqual([]);
        await unlink(completed('robotA'));
      }
      await rename(path.join(dir.path, 'robotA-moved'), completed('robotA'));
    },
  );

  it(
    "a session's temp folder swapped for a link into robotB's folder is dropped, and robotB's " + 'file is not written',
    async () => {
      const victim = randomBytes(8192);
      expect((await put('z/data', victim, TOKEN_B)).status).toBe(201);
      const local = path.join(dir.path, 'temp-swap.bin');
      const data = randomBytes(8192);
      await writeFile(local, data);
      const created = await createSession(
        server.url,
        local,
        { path: 'temp-swap.bin', chunkSize: 4096 },
        { token: TOKEN_A },
      );
      const id = created.json.id as string;
      const staging = path.join(server.uploadDir, 'temp', id);
      await rename(staging, `${staging}.away`);
      await symlink(completed('robotB', 'z'), staging);
      const chunk = await putChunk(server.url, id, 0, data.subarray(0, 4096), { token: TOKEN_A });
      expect(chunk.status).toBe(404);
      expect(chunk.json.code).toBe('SESSION_NOT_FOUND');
      expect(sha256Of(await readFile(completed('robotB', 'z', 'data')))).toBe(sha256Of(victim));
    },
  );
});

describe('a local process swapping a folder for a symlink in a loop', () => {
  it('never makes an upload land outside the storage, and every upload answered 201 is where it ' +
    'was meant to be', async () => {
    const bag = completed('robotA', 'race');
    await mkdir(bag, { recursive: true });
    const escapeDir = path.join(dir.path, 'escape');
    await mkdir(escapeDir);
    // The swapper: a separate process racing the server on the other core, as fast as it can.
    // When the server re-creates the folder while it is away, the swapper merges the two back,
    // so every file ends up in `race` again (it moves files; the server must never follow it).
    const script = `
      const fs = require('node:fs');
      const path = require('node:path');
      const [bag, away, target] = process.argv.slice(1);
      let rounds = 0, stop = false;
      process.stdin.on('data', () => { stop = true; });
      process.stdin.resume();
      const putBack = () => {
        try { if (fs.lstatSync(bag).isSymbolicLink()) fs.unlinkSync(bag); } catch {}
        for (let tries = 0; tries < 100; tries += 1) {
          try { fs.renameSync(away, bag); return; } catch (error) {
            if (error.code === 'ENOENT') return;
            try {
              for (const name of fs.readdirSync(bag)) fs.renameSync(path.join(bag, name), path.join(away, name));
              fs.rmdirSync(bag);
            } catch {}
          }
        }
      };
      const loop = () => {
        for (let i = 0; i < 200 && !stop; i += 1) {
          try { fs.renameSync(bag, away); } catch {}
          try { fs.symlinkSync(target, bag); } catch {}
          putBack();
          rounds += 1;
        }
        if (!stop) return setImmediate(loop);
        putBack();
        process.stdout.write(String(rounds));
        process.exit(0);
      };
      loop();
    `;
    const swapper = spawn(process.execPath, ['-e', script, bag, `${bag}.away`, escapeDir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let rounds = '';
    swapper.stdout.setEncoding('utf8').on('data', (text: string) => (rounds += text));
    const exited = new Promise<void>((resolve) => swapper.once('exit', () => resolve()));

    const ATTEMPTS = 2000;
    const stored = new Map<string, string>();
    const outcomes = new Map<string, number>();
    const attempted = new Map<string, string>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = next++; i < ATTEMPTS; i = next++) {
          const name = `race/f-${i}.bin`;
          const data = randomBytes(64 + (i % 50));
          attempted.set(name, sha256Of(data));
          const answer = await put(name, data, TOKEN_A, i % 2 === 1);
          const key = `${answer.status} ${answer.json.code ?? ''}`.trim();
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          if (answer.status === 201) stored.set(name, sha256Of(data));
        }
      }),
    );
    swapper.stdin.write('stop');
    await exited;

    expect(Number(rounds)).toBeGreaterThan(0);
    expect(await readdir(escapeDir)).toEqual([]);
    // Only answers that name a cause: stored, a symlink seen on the way, a folder moved (or a
    // file put in the folder's place) during the commit.
    const unexpected = [...outcomes.keys()].filter(
      (key) => !/^(201|400 INVALID_PATH|409 FILE_EXISTS|500 INTERNAL)$/.test(key),
    );
    expect(unexpected, JSON.stringify([...outcomes])).toEqual([]);
    expect(stored.size).toBeGreaterThan(0);
    for (const [name, sha] of stored) {
      expect(sha256Of(await readFile(completed('robotA', ...name.split('/')))), name).toBe(sha);
    }
    // Every file there holds what its upload sent. A file refused because its folder moved
    // during the commit is taken back, unless the swapper (merging a folder the server re-created
    // while the original was away) had already moved it: it is then in robotA's own folder,
    // intact, and indexed at the next start like any file the index does not know.
    const names = (await readdir(bag)).map((entry) => `race/${entry}`);
    for (const name of names)
      expect(sha256Of(await readFile(completed('robotA', ...name.split('/')))), name).toBe(attempted.get(name));
    expect(names.length - stored.size).toBeLessThan(outcomes.get('500 INTERNAL') ?? 1);
  }, 300_000);
});

describe('start-up refuses a storage that others may write (StrictModes)', () => {
  it(
    'names the folder and the fix for a root, a top folder or a folder above it writable by ' +
      'others, a foreign owner, or a symlinked top folder',
    async () => {
      const base = path.join(dir.path, 'strict');
      const cases: [string, () => Promise<void>, RegExp][] = [
        [
          'root 0777',
          () => chmod(path.join(base, 'a'), 0o777),
          /a \(the storage root\) may be written by its group and all users \(mode 0777\).*Fix: chmod go-w/,
        ],
        [
          'completed 0775',
          () => chmod(path.join(base, 'b', 'completed'), 0o775),
          /completed \(a folder of the storage\) may be written by its group.*chmod go-w .*completed/,
        ],
        [
          'state 0757',
          () => chmod(path.join(base, 'c', 'state'), 0o757),
          /state \(a folder of the storage\) may be written by all users/,
        ],
        ['foreign owner', () => chown(path.join(base, 'd', 'temp'), 12345, 12345), /owned by uid 12345.*Fix: chown/],
        [
          'symlinked top folder',
          async () => {
            await rename(path.join(base, 'e', 'compressed'), path.join(base, 'e-compressed'));
            await symlink(path.join(base, 'e-compressed'), path.join(base, 'e', 'compressed'));
          },
          /compressed \(a folder of the storage\) is a symbolic link/,
        ],
        [
          'open folder above',
          async () => {
            await chmod(path.join(base, 'open'), 0o777);
          },
          /open \(a folder above the storage root\) may be written by its group and all users/,
        ],
      ];
      const roots: Record<string, string> = {
        'root 0777': path.join(base, 'a'),
        'completed 0775': path.join(base, 'b'),
        'state 0757': path.join(base, 'c'),
        'foreign owner': path.join(base, 'd'),
        'symlinked top folder': path.join(base, 'e'),
        'open folder above': path.join(base, 'open', 'f'),
      };
      for (const [name, spoil, message] of cases) {
        const root = roots[name]!;
        // A first start creates the folders as the server wants them; then one is spoiled.
        const first = await createUploadServer({ host: '127.0.0.1', port: 0, uploadDir: root, logLevel: 'silent' });
        await first.close();
        await spoil();
        await expect(
          createUploadServer({ host: '127.0.0.1', port: 0, uploadDir: root, logLevel: 'silent' }),
          name,
        ).rejects.toMatchObject({ code: 'STATE_DIR', message: expect.stringMatching(message) });
      }
      // The program exits 73 (EX_CANTCREAT) with the message.
      const spawned = spawnServer(['--host', '127.0.0.1', '--port', '0', '--upload-dir', roots['root 0777']!]);
      await expect(spawned).rejects.toThrow(
        /exited with 73[\s\S]*Refusing an unsafe storage folder: .*a \(the storage root\)/,
      );
    },
  );
});
