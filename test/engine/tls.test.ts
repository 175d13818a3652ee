import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from 'selfsigned';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpFaultFront } from '../helpers/http-fault-front.js';
import { writeSelfSignedCert, type SelfSignedCert } from '../helpers/self-signed-cert.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { EventLog, KiB, createWorld, uploadStarts, waitFor, waitForCompletion, type EngineWorld } from './harness.js';

describe('NetworkManager over https', () => {
  let certDir: TempDir;
  let cert: SelfSignedCert;
  let world: EngineWorld;
  beforeEach(async () => {
    certDir = await createTempDir('engine-tls');
    cert = await writeSelfSignedCert(certDir.path);
    world = await createWorld({ sslCert: cert.certFile, sslKey: cert.keyFile });
  });
  afterEach(async () => {
    await world.close();
    await certDir.remove();
  });

  it('uploads to a self-signed server when given its certificate as caFile', async () => {
    const file = await world.randomFile('tls.bin', 700 * KiB);
    const manager = world.manager({ caFile: cert.certFile, chunkSize: 256 * KiB });
    await manager.start();
    expect(manager.serverUrl).toMatch(/^https:/);
    const done = await waitForCompletion(manager, await manager.addUpload(file.path, { remotePath: 'tls/tls.bin' }));
    expect(done.sha256).toBe(file.sha256);
    expect(await world.storedSha('tls/tls.bin')).toBe(file.sha256);
  });

  it('without the CA the certificate is refused as configuration (blocked, not offline) until caFile', async () => {
    const file = await world.randomFile('untrusted.bin', 10 * KiB);
    const manager = world.manager({ maxRetries: 1 });
    const log = new EventLog(manager);
    await manager.start();
    const id = await manager.addUpload(file.path, { remotePath: 'tls/untrusted.bin' });
    await waitFor(() => manager.problems.length > 0, 'the engine blocked');
    const [problem] = manager.problems;
    expect(problem!.code).toBe('TLS_CERTIFICATE');
    expect(problem!.message).toMatch(/self-signed/);
    expect(problem!.message).toContain('--ca-file');
    expect(log.of('blocked')).toHaveLength(1);
    expect(manager.online).toBe(true);
    expect(log.count('offline')).toBe(0);
    expect(manager.upload(id)?.state).not.toBe('failed');
    expect(log.count('failed')).toBe(0);

    // The fix: the CA, given at run time (a ROS parameter or setOptions), unblocks it.
    manager.setOptions({ caFile: cert.certFile });
    const done = await waitForCompletion(manager, id);
    expect(done.sha256).toBe(file.sha256);
    expect(manager.problems).toEqual([]);
    expect(log.count('unblocked')).toBe(1);
  });

  it('presents a client certificate for mutual TLS', async () => {
    const client = await generate([{ name: 'commonName', value: 'robot-1' }], {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 2 * 86_400_000),
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'extKeyUsage', clientAuth: true },
      ],
    });
    const clientCert = path.join(certDir.path, 'client.pem');
    const clientKey = path.join(certDir.path, 'client-key.pem');
    await writeFile(clientCert, client.cert);
    await writeFile(clientKey, client.private, { mode: 0o600 });
    const { readFile } = await import('node:fs/promises');
    const front = await HttpFaultFront.start({
      target: world.server.url,
      tls: {
        key: await readFile(cert.keyFile),
        cert: await readFile(cert.certFile),
        ca: [client.cert],
        requestCert: true,
        rejectUnauthorized: true,
      },
    });
    try {
      const file = await world.randomFile('mtls.bin', 300 * KiB);
      const manager = world.manager({ serverUrl: front.url, caFile: cert.certFile, clientCert, clientKey });
      await manager.start();
      const done = await waitForCompletion(manager, await manager.addUpload(file.path, { remotePath: 'tls/mtls.bin' }));
      expect(done.sha256).toBe(file.sha256);
      expect(await world.storedSha('tls/mtls.bin')).toBe(file.sha256);
      await manager.stop();

      // The same front refuses a client without a certificate.
      const anonymous = world.manager({ serverUrl: front.url, caFile: cert.certFile, maxRetries: 0 });
      await anonymous.start();
      await anonymous.addUpload(file.path, { remotePath: 'tls/mtls-2.bin' });
      await waitFor(() => !anonymous.online, 'the client without a certificate to be refused');
      expect(uploadStarts(front)).toHaveLength(1);
    } finally {
      await front.close();
    }
  });
});
