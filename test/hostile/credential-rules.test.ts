import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadServer } from '../../server/index.js';
import { estimatedBits, tokenWeakness } from '../../server/http/token-strength.js';
import { call } from '../helpers/native-upload.js';
import { runServerProgram, spawnServer } from '../helpers/spawn-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { testToken } from '../helpers/tokens.js';

/**
 * Issue 11, points 12 and 16, at start-up: weak tokens, the reserved uploader name `anonymous`
 * and a tokens file others can read are refused (or warned about) before the server listens.
 * Before the fix, any token of 8 characters was accepted, a token could name the uploader
 * `anonymous` (whose files every unauthenticated client then shared), and a world-readable tokens
 * file went unnoticed.
 */

let dir: TempDir;
beforeAll(async () => {
  dir = await createTempDir('credential-rules');
});
afterAll(async () => {
  await dir?.remove();
});

const STRONG = testToken('credential rules robot1');

describe('the token rule', () => {
  it('refuses short, non-ASCII and patterned tokens, naming why', () => {
    expect(tokenWeakness('robot1-secret-token-aaaa')).toBe('it has 24 characters; tokens need at least 32');
    expect(tokenWeakness(`${'x'.repeat(40)} y`)).toMatch(/printable ASCII without spaces/);
    expect(tokenWeakness(`tøken-${randomBytes(20).toString('hex')}`)).toMatch(/printable ASCII/);
    expect(tokenWeakness('x'.repeat(1025))).toMatch(/at most 1024/);
    for (const weak of [
      'a'.repeat(32),
      'abcdefghijklmnopqrstuvwxyz123456',
      '0123456789abcdef0123456789abcdef',
      'changemechangemechangemechangeme',
      'password1234password1234password',
      'abababababababababababababababab',
      'robot1robot1robot1robot1robot1robot1',
    ]) {
      expect(tokenWeakness(weak), weak).toMatch(/made mostly of repeats and runs \(an estimated \d+ bits/);
    }
  });

  it('accepts random tokens of 32 characters and more in hex, base64 or letters and digits', () => {
    for (let i = 0; i < 2000; i += 1) {
      for (const token of [
        randomBytes(16).toString('hex'),
        randomBytes(32).toString('hex'),
        randomBytes(24).toString('base64'),
        randomBytes(24).toString('base64url'),
        crypto.randomUUID(),
      ]) {
        expect(tokenWeakness(token), token).toBeUndefined();
      }
    }
    expect(estimatedBits(randomBytes(32).toString('hex'))).toBeGreaterThan(200);
  });
});

describe('start-up refuses unusable credentials (exit 78, naming the uploader, never the token)', () => {
  const storage = (): string => path.join(dir.path, 'storage');

  it('a weak token, from the environment or from a tokens file', async () => {
    const env = await runServerProgram(['--upload-dir', storage()], {
      UPLOAD_SERVER_TOKENS: `robot1=${STRONG},robot2=robot2-secret-token`,
    });
    expect(env.code).toBe(78);
    expect(env.stderr).toContain('The token of uploader robot2 in tokens entry #2 is too weak: it has 19 characters');
    expect(env.stderr).toContain('openssl rand -hex 32');
    expect(env.stderr).not.toContain('robot2-secret-token');

    const file = path.join(dir.path, 'weak.yaml');
    await writeFile(file, `robot1: ${STRONG}\nrobot3: [${STRONG.slice(0, 8)}${'0'.repeat(32)}]\n`, { mode: 0o600 });
    const fromFile = await runServerProgram(['--upload-dir', storage(), '--tokens-file', file]);
    expect(fromFile.code).toBe(78);
    expect(fromFile.stderr).toMatch(
      new RegExp(
        `The token of uploader robot3 in tokens file ${file}, uploader robot3 is too weak: .*repeats and runs`,
      ),
    );
    expect(fromFile.stderr).not.toContain('0'.repeat(32));
  });

  it('the uploader name anonymous, in any case, from a tokens file, the environment or library options', async () => {
    const file = path.join(dir.path, 'anonymous.yaml');
    await writeFile(file, `anonymous: ${STRONG}\n`, { mode: 0o600 });
    const fromFile = await runServerProgram(['--upload-dir', storage(), '--tokens-file', file]);
    expect(fromFile.code).toBe(78);
    expect(fromFile.stderr).toContain(
      `The uploader name "anonymous" in tokens file ${file}, uploader anonymous is reserved for requests ` +
        'without credentials',
    );
    const env = await runServerProgram(['--upload-dir', storage()], { UPLOAD_SERVER_TOKENS: `Anonymous=${STRONG}` });
    expect(env.code).toBe(78);
    expect(env.stderr).toContain('"Anonymous" in tokens entry #1 is reserved');
    await expect(
      createUploadServer({ port: 0, uploadDir: storage(), logLevel: 'silent', tokens: [`ANONYMOUS=${STRONG}`] }),
    ).rejects.toMatchObject({ code: 'AUTH_CONFIG', message: expect.stringMatching(/"ANONYMOUS" .* is reserved/) });
    for (const run of [fromFile, env]) expect(run.stderr).not.toContain(STRONG);
  });

  it('a tokens file its group or others can read is a warning, and with --strict-permissions a refusal', async () => {
    const file = path.join(dir.path, 'loose.yaml');
    await writeFile(file, `robot1: ${STRONG}\n`);
    for (const [mode, who] of [
      [0o644, 'read by its group, and read by others'],
      [0o640, 'read by its group'],
      [0o602, 'written by others'],
    ] as const) {
      await chmod(file, mode);
      const refused = await runServerProgram([
        '--upload-dir',
        storage(),
        '--tokens-file',
        file,
        '--strict-permissions',
      ]);
      expect(refused.code, mode.toString(8)).toBe(78);
      expect(refused.stderr).toContain(
        `The tokens file ${file} can be ${who} (mode 0${mode.toString(8)}): chmod 600 ${file}`,
      );
    }
    await chmod(file, 0o644);
    const warned = await spawnServer([
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--upload-dir',
      storage(),
      '--tokens-file',
      file,
    ]);
    try {
      const warning = warned
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.event === 'loose_file_permissions');
      expect(warning).toMatchObject({ level: 40, file, mode: '0644' });
      expect(warning?.msg).toContain('strictPermissions would refuse to start');
      expect((await call(warned.url, 'GET', '/v1/files/x', undefined, { token: STRONG })).status).toBe(404);
    } finally {
      await warned.stop();
    }
    await chmod(file, 0o600);
    const quiet = await spawnServer(['--port', '0', '--upload-dir', storage(), '--tokens-file', file]);
    try {
      expect(quiet.stdout()).not.toContain('loose_file_permissions');
    } finally {
      await quiet.stop();
    }
  });
});
