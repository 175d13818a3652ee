import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256OfFile, writeRandomFile } from '../helpers/random-file.js';
import { writeSelfSignedCert } from '../helpers/self-signed-cert.js';
import { startTestServer, type TestServer } from '../helpers/start-server.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

/**
 * The user's deployment guide, run as written against our server: its curl examples with bash and
 * curl, its Python example with python3 and requests. Only `localhost:8080` is replaced by the
 * test server's address. The code blocks are read from the guide itself.
 */
const GUIDE = '/work/shared/seed/production-deployment-guide.md';
const run = promisify(execFile);
let guide: string;
let dir: TempDir;

const FENCE = '```';

function block(language: string, containing: string): string {
  const blocks = [...guide.matchAll(new RegExp(`${FENCE}${language}\\n([\\s\\S]*?)${FENCE}`, 'g'))].map((m) => m[1]!);
  const found = blocks.find((b) => b.includes(containing));
  if (!found) throw new Error(`no ${language} block containing ${containing} in the guide`);
  return found;
}

const at = (text: string, server: TestServer): string => text.replaceAll('localhost:8080', new URL(server.url).host);

beforeAll(async () => {
  guide = await readFile(GUIDE, 'utf8');
  dir = await createTempDir('guide');
});
afterAll(async () => {
  await dir?.remove();
});

describe("the deployment guide's examples", () => {
  it('"Test Rate Limiting": 100 inits with curl, 429 Too Many Requests after the 20 allowed per hour', async () => {
    const server = await startTestServer({ rateLimit: true });
    try {
      const script = at(block('bash', 'for i in {1..100}'), server).replace(
        'curl -X POST',
        'curl -s -w "\\n%{http_code}\\n" -X POST',
      );
      const { stdout } = await run('bash', ['-c', script], { timeout: 60_000 });
      const codes = stdout.split('\n').filter((line) => /^\d{3}$/.test(line));
      expect(codes).toHaveLength(100);
      expect(codes.slice(0, 20).every((c) => c === '200')).toBe(true);
      expect(codes.slice(20).every((c) => c === '429')).toBe(true);
      expect(stdout).toContain('"code":"RATE_LIMITED"');
      // And the loop exactly as printed in the guide (no flags added) runs and shows the refusals.
      const verbatim = await run('bash', ['-c', at(block('bash', 'for i in {1..100}'), server)], { timeout: 60_000 });
      expect(verbatim.stdout).toContain('"success":false');
    } finally {
      await server.close();
    }
  });

  it('"Test SSL/TLS": curl -k and openssl s_client against a self-signed certificate', async () => {
    const cert = await writeSelfSignedCert(dir.path);
    const server = await startTestServer({ sslCert: cert.certFile, sslKey: cert.keyFile });
    try {
      const lines = at(block('bash', 'curl -k https://localhost:8080/health'), server)
        .split('\n')
        .filter((l) => l && !l.startsWith('#'));
      const health = await run('bash', ['-c', lines.find((l) => l.startsWith('curl'))!], { timeout: 30_000 });
      expect(JSON.parse(health.stdout)).toMatchObject({
        status: 'ok',
        features: expect.arrayContaining(['chunked-upload', 'compression', 'rate-limiting', 'ssl-support']),
      });
      const sClient = await run('bash', ['-c', `${lines.find((l) => l.startsWith('openssl'))!} < /dev/null`], {
        timeout: 30_000,
      });
      expect(sClient.stdout).toContain('-----BEGIN CERTIFICATE-----');
      expect(sClient.stdout).toContain('CN = localhost');
    } finally {
      await server.close();
    }
  });

  it('"Test Compression": the Python requests example shows compression_enabled True', async () => {
    const server = await startTestServer();
    try {
      const script = at(block('python', "'compression': True  # Enable compression"), server);
      const { stdout } = await run('python3', ['-c', script], { timeout: 30_000 });
      expect(stdout).toContain("'success': True");
      expect(stdout).toContain("'compression_enabled': True");
    } finally {
      await server.close();
    }
  });

  it('"Health Check": GET /health has the documented shape', async () => {
    const server = await startTestServer();
    try {
      const { stdout } = await run('curl', ['-s', `${server.url}/health`]);
      const health = JSON.parse(stdout) as Record<string, unknown>;
      expect(Object.keys(health)).toEqual(expect.arrayContaining(['status', 'timestamp', 'version', 'features']));
      expect(new Date(health.timestamp as string).toISOString()).toBe(health.timestamp);
      expect(health.protocol).toBe(1);
    } finally {
      await server.close();
    }
  });

  it("a Python requests client uploading as the dashboard's NetworkManager gets the file byte-identical", async () => {
    const server = await startTestServer();
    try {
      const file = path.join(dir.path, 'recording.bag');
      const sha = await writeRandomFile(file, 3 * 1024 * 1024 + 11);
      const script = `
import hashlib, json, math, os, sys, requests
url, path = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
chunks = 5
md5 = hashlib.md5(open(path, 'rb').read()).hexdigest()
init = requests.post(url + '/upload/init', json={
    'filename': 'recording.bag', 'filesize': size, 'chunks': chunks, 'checksum': md5,
    'metadata': {'source': 'robot1', 'session': 'test'},
}, timeout=10).json()
step = math.ceil(size / chunks)
with open(path, 'rb') as f:
    for i in range(chunks):
        data = f.read(step)
        r = requests.post(url + '/upload/chunk', files={'chunk': ('chunk_%d' % i, data)},
                          data={'upload_id': init['upload_id'], 'chunk_index': i, 'chunk_total': chunks}, timeout=300)
        r.raise_for_status()
final = requests.post(url + '/upload/finalize', json={'upload_id': init['upload_id'], 'checksum': md5}, timeout=10)
print(json.dumps({'status': final.status_code, 'body': final.json(), 'md5': md5}))
`;
      const { stdout } = await run('python3', ['-c', script, server.url, file], { timeout: 60_000 });
      const result = JSON.parse(stdout) as { status: number; body: Record<string, unknown>; md5: string };
      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({
        success: true,
        file_path: 'completed/anonymous/recording.bag',
        checksum: result.md5,
        sha256: sha,
      });
      expect(await sha256OfFile(server.completedPath('anonymous', 'recording.bag'))).toBe(sha);
    } finally {
      await server.close();
    }
  });
});
