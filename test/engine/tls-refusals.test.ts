import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { UploadAgent } from '../../agent/app/upload-agent.js';
import { assessAgent } from '../../agent/ros/diagnostics.js';
import { DiagnosticLevel } from '../../agent/ros/diagnostic-levels.js';
import { runAgent } from '../cli/support/spawn-agent.js';
import { writeCertificate, type CertificateOptions } from '../helpers/self-signed-cert.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { EventLog, KiB, createWorld, waitFor, type EngineWorld } from './harness.js';

/**
 * A server certificate that verification refuses is a configuration error, not an outage: the
 * engine is blocked with TLS_CERTIFICATE and a message naming the problem and the fix (never
 * "offline"), the daemon's status and /diagnostics say ERROR, and `upload` exits 78. Real
 * certificates, a real TLS server.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface TlsWorld {
  world: EngineWorld;
  dir: TempDir;
  ca: Awaited<ReturnType<typeof writeCertificate>>;
}

/** A real server speaking TLS with a certificate made by `options` (signed by a test CA unless selfSigned). */
async function serverWith(options: CertificateOptions & { selfSigned?: boolean }): Promise<TlsWorld> {
  const dir = await createTempDir('tls-refusal');
  cleanups.push(() => dir.remove());
  const ca = await writeCertificate(dir.path, { prefix: 'ca-', commonName: 'Fleet test CA' });
  const server = await writeCertificate(dir.path, {
    prefix: 'server-',
    ...options,
    ...(options.selfSigned ? {} : { ca }),
  });
  const world = await createWorld({ sslCert: server.certFile, sslKey: server.keyFile });
  cleanups.push(() => world.close());
  return { world, dir, ca };
}

async function refusal(world: EngineWorld, caFile: string | undefined): Promise<string> {
  const file = await world.randomFile('refused.bin', 10 * KiB);
  const manager = world.manager({ ...(caFile ? { caFile } : {}), maxRetries: 3 });
  const log = new EventLog(manager);
  await manager.start();
  const id = await manager.addUpload(file.path, { remotePath: 'tls/refused.bin' });
  await waitFor(() => manager.problems.length > 0, 'the engine blocked by the certificate');
  expect(manager.problems.map((problem) => problem.code)).toEqual(['TLS_CERTIFICATE']);
  expect(manager.online, 'not reported as an outage').toBe(true);
  expect(log.count('offline')).toBe(0);
  expect(manager.upload(id)?.state).not.toBe('failed');
  return manager.problems[0]!.message;
}

describe('TLS verification failures', { timeout: 120_000 }, () => {
  it('self-signed: names it and --ca-file', async () => {
    const { world } = await serverWith({ selfSigned: true });
    const message = await refusal(world, undefined);
    expect(message).toMatch(/self-signed and not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
    expect(message).toContain('--ca-file');
  });

  it('an unknown CA: names it and --ca-file, or the CA file that did not sign it', async () => {
    const { world, dir } = await serverWith({});
    expect(await refusal(world, undefined)).toMatch(/a CA this machine does not trust.*--ca-file/);
    const other = await writeCertificate(dir.path, { prefix: 'other-', commonName: 'Another CA' });
    const message = await refusal(world, other.certFile);
    expect(message).toContain(`the CA in --ca-file ${other.certFile} did not sign it`);
  });

  it('a certificate for another host name: names the names it is for and the host asked for', async () => {
    const { world, ca } = await serverWith({ dnsNames: ['uploads.example.org'], ips: [] });
    const message = await refusal(world, ca.certFile);
    expect(message).toMatch(/not for the host name 127\.0\.0\.1 \(it is for uploads\.example\.org\)/);
    expect(message).toMatch(/--server https:\/\/<a name the certificate is for>/);
  });

  it('an expired certificate: says so, with this machine clock', async () => {
    const { world, ca } = await serverWith({
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const message = await refusal(world, ca.certFile);
    expect(message).toMatch(/has expired \(CERT_HAS_EXPIRED; this machine's clock says \d{4}-/);
    expect(message).toMatch(/renew the certificate/);
  });

  it('the daemon reports ERROR with the fix (not offline); `upload` exits 78 naming the problem', async () => {
    const { world, dir } = await serverWith({ selfSigned: true });
    const agent = new UploadAgent({
      config: {
        serverUrl: world.proxy.url('https'),
        stateDir: path.join(dir.path, 'agent-state'),
        retryDelay: 0.02,
        retryMaxDelay: 0.3,
      },
      logger: pino({ level: 'silent' }),
    });
    cleanups.push(() => agent.stop());
    await agent.start();
    const file = await world.randomFile('daemon.bin', 10 * KiB);
    await agent.enqueue(file.path);
    await waitFor(() => agent.status().problems.length > 0, 'the agent status to carry the problem');
    const status = agent.status();
    expect(status.online).toBe(true);
    const assessed = assessAgent(status);
    expect(assessed.level).toBe(DiagnosticLevel.ERROR);
    expect(assessed.message).toMatch(/self-signed.*--ca-file/);
    expect(assessed.message).not.toMatch(/offline/);
    expect(assessed.values).toContainEqual(expect.objectContaining({ key: 'problem: TLS_CERTIFICATE' }));

    const result = await runAgent([
      'upload',
      file.path,
      '--server',
      world.proxy.url('https'),
      '--state-dir',
      path.join(dir.path, 'cli-state'),
      '--retry-delay',
      '50ms',
    ]);
    expect(result.code, result.stderr).toBe(78);
    expect(result.stdout).toMatch(/stopped: .*self-signed.*--ca-file/);
    expect(result.stderr).toMatch(/certificate/);
  });
});
