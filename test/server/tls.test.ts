import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadServer } from '../../server/index.js';
import { uploadFile } from '../helpers/native-upload.js';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { writeSelfSignedCert, type SelfSignedCert } from '../helpers/self-signed-cert.js';
import { runServerProgram } from '../helpers/spawn-server.js';
import { startTestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

let dir: TempDir;
let cert: SelfSignedCert;

beforeAll(async () => {
  dir = await createTempDir('tls');
  cert = await writeSelfSignedCert(dir.path);
});
afterAll(async () => {
  await dir?.remove();
});

describe('TLS', () => {
  it('serves HTTPS with a self-signed certificate: health and a verified upload', async () => {
    const server = await startTestServer({ sslCert: cert.certFile, sslKey: cert.keyFile });
    const dispatcher = new Agent({ connect: { ca: cert.cert } });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${server.url}/health`, { dispatcher } as unknown as RequestInit);
      expect(await health.json()).toMatchObject({ status: 'ok', features: expect.arrayContaining(['ssl-support']) });
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
      const file = path.join(dir.path, 'over-tls.bin');
      const sha = await writeRandomFile(file, 2 * 1024 * 1024 + 5);
      const result = await uploadFile(server.url, file, 'over-tls.bin', {
        chunkSize: 1024 * 1024,
        init: { dispatcher } as unknown as RequestInit,
      });
      expect(result.complete.json).toMatchObject({ state: 'complete', sha256: sha });
      expect(await sha256OfFile(server.completedPath('anonymous', 'over-tls.bin'))).toBe(sha);
      const plain = await fetch(`${server.url.replace('https:', 'http:')}/health`).catch((error: Error) => error);
      expect(plain).toBeInstanceOf(Error);
    } finally {
      await dispatcher.close();
      await server.close();
    }
  });

  it('a missing or unusable certificate is a startup error naming the file, never plain HTTP', async () => {
    const uploadDir = path.join(dir.path, 'storage');
    const missing = path.join(dir.path, 'missing-cert.pem');
    await expect(
      createUploadServer({ port: 0, uploadDir, logLevel: 'silent', sslCert: missing, sslKey: cert.keyFile }),
    ).rejects.toThrow(`Cannot read the SSL certificate file ${missing}: no such file`);
    await expect(
      createUploadServer({ port: 0, uploadDir, logLevel: 'silent', sslCert: cert.certFile }),
    ).rejects.toThrow(/SSL_KEY \(--ssl-key\) is not/);
    const garbage = path.join(dir.path, 'garbage.pem');
    await writeFile(garbage, 'not a certificate');
    await expect(
      createUploadServer({ port: 0, uploadDir, logLevel: 'silent', sslCert: garbage, sslKey: cert.keyFile }),
    ).rejects.toThrow(/cannot be used together/);

    const run = await runServerProgram(['--port', '0', '--upload-dir', uploadDir], {
      SSL_CERT: missing,
      SSL_KEY: cert.keyFile,
    });
    expect(run.code).toBe(78);
    expect(run.stderr.trim().split('\n')).toEqual([
      `ros2-upload-server: Cannot read the SSL certificate file ${missing}: no such file`,
    ]);
    expect(run.stdout).not.toContain('listening');
  });
});
