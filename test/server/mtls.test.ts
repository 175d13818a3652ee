import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkManager } from '../../agent/engine/index.js';
import { routes } from '../../common/protocol/native-protocol.js';
import { createUploadHandler, createUploadServer } from '../../server/index.js';
import { waitForCompletion } from '../engine/harness.js';
import { makeCa, makeClientCert, type PemPair } from '../helpers/client-certs.js';
import { call, type Answer } from '../helpers/native-upload.js';
import { writeSelfSignedCert, type SelfSignedCert } from '../helpers/self-signed-cert.js';
import { runServerProgram } from '../helpers/spawn-server.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';
import { testToken } from '../helpers/tokens.js';

/**
 * Issue 11, point 17: mutual TLS. `--client-ca` makes the server ask for client certificates;
 * a verified one maps to an uploader (clientCertMap, or the subject CN with
 * clientCertCommonName); tokens still work beside it. Real certificates: a CA made here, client
 * certificates signed by it, one signed by another CA, an expired one, one not meant for clients.
 */

let dir: TempDir;
let serverCert: SelfSignedCert;
let fleetCa: PemPair;
const certs: Record<string, PemPair> = {};
let mapFile: string;
let server: TestServer;
const TOKEN8 = testToken('mtls robot8');
const TOKEN10 = testToken('mtls robot10');

beforeAll(async () => {
  dir = await createTempDir('mtls');
  serverCert = await writeSelfSignedCert(dir.path);
  fleetCa = await makeCa(dir.path, 'fleet-ca');
  const otherCa = await makeCa(dir.path, 'other-ca');
  const day = 86_400_000;
  const make = async (name: string, ca: PemPair, options: Parameters<typeof makeClientCert>[3]) => {
    certs[name] = await makeClientCert(dir.path, name, ca, options);
  };
  await make('robot7', fleetCa, { cn: 'robot7', uris: ['spiffe://fleet.example/robot7'] });
  await make('robot8', fleetCa, { cn: 'robot8', dnsNames: ['robot8.fleet.example'] });
  await make('robot9', fleetCa, { cn: 'robot9' });
  await make('stranger', otherCa, { cn: 'robot7', uris: ['spiffe://fleet.example/robot7'] });
  await make('expired', fleetCa, {
    cn: 'robot7',
    uris: ['spiffe://fleet.example/robot7'],
    notBefore: new Date(Date.now() - 10 * day),
    notAfter: new Date(Date.now() - day),
  });
  await make('serverOnly', fleetCa, { cn: 'robot7', uris: ['spiffe://fleet.example/robot7'], usage: 'serverAuth' });
  await make('anonymous', fleetCa, { cn: 'anonymous' });
  mapFile = path.join(dir.path, 'client-certs.yaml');
  await writeFile(mapFile, 'robot7: URI:spiffe://fleet.example/robot7\nrobot8: [CN=robot8]\n', { mode: 0o600 });
  server = await startTestServer({
    sslCert: serverCert.certFile,
    sslKey: serverCert.keyFile,
    clientCa: fleetCa.certFile,
    clientCertMap: mapFile,
    tokens: [`robot8=${TOKEN8}`, `robot10=${TOKEN10}`],
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await dir?.remove();
});

const agents: Agent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
});

/** A TLS client that trusts the server and presents `cert` (or no certificate). */
function client(cert?: PemPair): RequestInit {
  const agent = new Agent({
    connect: { ca: serverCert.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}) },
  });
  agents.push(agent);
  return { dispatcher: agent } as unknown as RequestInit;
}

function putFile(base: string, remote: string, init: RequestInit, token?: string): Promise<Answer> {
  const data = Buffer.from(`stored as ${remote}`);
  return call(base, 'PUT', routes.file(remote), data, {
    init,
    ...(token ? { token } : {}),
    headers: {
      'content-type': 'application/octet-stream',
      'x-content-sha256': createHash('sha256').update(data).digest('hex'),
    },
  });
}

const storedAs = (uploader: string, remote: string): boolean => {
  try {
    readFileSync(server.completedPath(uploader, remote));
    return true;
  } catch {
    return false;
  }
};

describe('mutual TLS: client certificates as credentials', { timeout: 60_000 }, () => {
  it('a verified certificate maps to its uploader by SAN URI or by CN, as clientCertMap lists it', async () => {
    const seven = await putFile(server.url, 'run1/a.bin', client(certs.robot7));
    expect(seven.status, JSON.stringify(seven.json)).toBe(201);
    expect(storedAs('robot7', 'run1/a.bin')).toBe(true);
    const eight = await putFile(server.url, 'run1/b.bin', client(certs.robot8));
    expect(eight.status).toBe(201);
    expect(storedAs('robot8', 'run1/b.bin')).toBe(true);
    // Authenticated as robot7: it may list its files, and sees robot8's as not there.
    const listed = await call(server.url, 'GET', '/uploads', undefined, { init: client(certs.robot7) });
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ count: 1, uploads: [expect.objectContaining({ filename: 'run1/a.bin' })] });
    expect(
      (await call(server.url, 'GET', routes.file('run1/b.bin'), undefined, { init: client(certs.robot7) })).status,
    ).toBe(404);
  });

  it('refuses, naming the problem: another CA, expired, not for clients, or not in the map', async () => {
    const cases: [string, RegExp][] = [
      ['stranger', /not signed by a CA in the server's clientCa/],
      ['expired', /expired on .* \(CERT_HAS_EXPIRED\); renew it/],
      ['serverOnly', /not meant for client authentication/],
      ['robot9', /CN=robot9\) is valid but not listed in the server's clientCertMap/],
    ];
    for (const [name, message] of cases) {
      const answer = await putFile(server.url, `run2/${name}.bin`, client(certs[name]));
      expect(answer.status, name).toBe(401);
      expect(answer.json).toMatchObject({ code: 'UNAUTHORIZED', error: expect.stringMatching(message) });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    }
    for (const uploader of ['robot7', 'robot9', 'anonymous'])
      for (const name of ['stranger', 'expired', 'serverOnly', 'robot9'])
        expect(storedAs(uploader, `run2/${name}.bin`), `${uploader} ${name}`).toBe(false);
  });

  it('tokens and certificates coexist: either alone works; together they must name the same uploader', async () => {
    // No certificate and no token: not anonymous, since the server has credentials.
    const none = await putFile(server.url, 'run3/none.bin', client());
    expect(none.status).toBe(401);
    expect(none.json.error).toMatch(/requires a client certificate signed by its clientCa, or a bearer token/);
    expect((await putFile(server.url, 'run3/token.bin', client(), TOKEN10)).status).toBe(201);
    expect(storedAs('robot10', 'run3/token.bin')).toBe(true);
    expect((await putFile(server.url, 'run3/both.bin', client(certs.robot8), TOKEN8)).status).toBe(201);
    const mixed = await putFile(server.url, 'run3/mixed.bin', client(certs.robot7), TOKEN8);
    expect(mixed.status).toBe(401);
    expect(mixed.json.error).toMatch(/certificate is uploader robot7's but the bearer token is robot8's/);
    const wrongToken = await putFile(server.url, 'run3/wrong.bin', client(certs.robot7), testToken('nobody'));
    expect(wrongToken.status).toBe(401);
    expect(wrongToken.json.error).toBe('The bearer token is not valid');
    // A refused certificate is not rescued by a valid token.
    expect((await putFile(server.url, 'run3/rescue.bin', client(certs.stranger), TOKEN8)).status).toBe(401);
  });

  it('the agent presents its certificate (clientCert, clientKey) and its uploads land in its folder', async () => {
    const data = Buffer.alloc(300 * 1024, 42);
    const file = path.join(dir.path, 'agent-upload.bin');
    await writeFile(file, data);
    const manager = new NetworkManager({
      uploadUrl: server.url,
      caFile: serverCert.certFile,
      clientCert: certs.robot7!.certFile,
      clientKey: certs.robot7!.keyFile,
      stateDir: path.join(dir.path, 'agent-state'),
      chunkSize: 64 * 1024,
      logger: pino({ level: 'silent' }),
    });
    await manager.start();
    try {
      const done = await waitForCompletion(manager, await manager.addUpload(file, { remotePath: 'run4/agent.bin' }));
      expect(done.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      expect(readFileSync(server.completedPath('robot7', 'run4/agent.bin')).equals(data)).toBe(true);
    } finally {
      await manager.stop();
    }
  });

  it('with clientCertCommonName, the CN names the uploader (never anonymous); refusals count as failures', async () => {
    const byName = await startTestServer({
      sslCert: serverCert.certFile,
      sslKey: serverCert.keyFile,
      clientCa: fleetCa.certFile,
      clientCertCommonName: true,
      rateLimit: true,
      rateLimitAuthFailures: 2,
    });
    try {
      expect((await putFile(byName.url, 'run5/nine.bin', client(certs.robot9))).status).toBe(201);
      expect(readFileSync(byName.completedPath('robot9', 'run5/nine.bin')).length).toBeGreaterThan(0);
      const anonymous = await putFile(byName.url, 'run5/anon.bin', client(certs.anonymous));
      expect(anonymous.status).toBe(401);
      expect(anonymous.json.error).toMatch(/CN "anonymous" is not a usable uploader name/);
      expect((await putFile(byName.url, 'run5/x.bin', client(certs.stranger))).status).toBe(401);
      expect((await putFile(byName.url, 'run5/y.bin', client(certs.robot9))).status).toBe(429);
    } finally {
      await byName.close();
    }
  });
});

describe('mutual TLS settings are checked at start-up', { timeout: 60_000 }, () => {
  const base = () => ({ port: 0, uploadDir: path.join(dir.path, 'storage'), logLevel: 'silent' as const });
  const tls = () => ({ sslCert: serverCert.certFile, sslKey: serverCert.keyFile });

  it('refuses incomplete or unusable settings with a message naming the fix', async () => {
    await expect(
      createUploadServer({ ...base(), clientCa: fleetCa.certFile, clientCertCommonName: true }),
    ).rejects.toMatchObject({ code: 'TLS_CONFIG', message: expect.stringMatching(/client certificates need HTTPS/) });
    await expect(createUploadServer({ ...base(), ...tls(), clientCa: fleetCa.certFile })).rejects.toMatchObject({
      code: 'AUTH_CONFIG',
      message: expect.stringMatching(/nothing says which certificate is which uploader/),
    });
    await expect(createUploadServer({ ...base(), ...tls(), clientCertCommonName: true })).rejects.toMatchObject({
      code: 'AUTH_CONFIG',
      message: expect.stringMatching(/need clientCa/),
    });
    const garbage = path.join(dir.path, 'garbage-ca.pem');
    await writeFile(garbage, 'not a certificate');
    await expect(
      createUploadServer({ ...base(), ...tls(), clientCa: garbage, clientCertCommonName: true }),
    ).rejects.toMatchObject({ code: 'TLS_CONFIG', message: expect.stringContaining(`client CA file ${garbage}`) });
    const anonymousMap = path.join(dir.path, 'anonymous-map.yaml');
    await writeFile(anonymousMap, 'anonymous: CN=robot1\n', { mode: 0o600 });
    await expect(
      createUploadServer({ ...base(), ...tls(), clientCa: fleetCa.certFile, clientCertMap: anonymousMap }),
    ).rejects.toMatchObject({ code: 'AUTH_CONFIG', message: expect.stringMatching(/"anonymous" .* is reserved/) });
    const twice = path.join(dir.path, 'twice-map.yaml');
    await writeFile(twice, 'robot1: CN=robot1\nrobot2: [CN=robot1]\n', { mode: 0o600 });
    await expect(
      createUploadServer({ ...base(), ...tls(), clientCa: fleetCa.certFile, clientCertMap: twice }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/CN=robot1 is given to uploaders robot1 and robot2/) });
    const badIdentity = path.join(dir.path, 'bad-identity.yaml');
    await writeFile(badIdentity, 'robot1: robot1.fleet.example\n', { mode: 0o600 });
    await expect(
      createUploadServer({ ...base(), ...tls(), clientCa: fleetCa.certFile, clientCertMap: badIdentity }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/expected CN=<name>, DNS:<name> or URI:<uri>/) });
    await expect(
      createUploadHandler({ ...base(), ...tls(), clientCa: fleetCa.certFile, clientCertCommonName: true }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/clientCa needs the server's own TLS/) });
  });

  it('the program exits 78 on them (here: --client-ca without a map or the CN rule)', async () => {
    const run = await runServerProgram([
      '--upload-dir',
      path.join(dir.path, 'storage'),
      '--ssl-cert',
      serverCert.certFile,
      '--ssl-key',
      serverCert.keyFile,
      '--client-ca',
      fleetCa.certFile,
    ]);
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/clientCertMap .* or clientCertCommonName/);
  });
});
