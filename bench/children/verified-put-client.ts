/**
 * Baseline (d) of the throughput benchmark, the client half: one PUT of the whole file streamed
 * from disk, its SHA-256 computed on the way and sent as the `x-sha256` trailer (chunked
 * encoding), so the server can verify it (plain-put-server.ts `--verify`). Prints
 * `uploaded <bytes> in <ms> ms, cpu <seconds> s` where the time and CPU run from the request's
 * start to its answer (start-up excluded, as for ours); exits 1 unless the answer is 200.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';

const [file, url] = process.argv.slice(2);
if (!file || !url) throw new Error('usage: verified-put-client.ts <file> <url>');
const size = (await stat(file)).size;
const cpuBefore = process.cpuUsage();
const started = performance.now();
const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
  const req = http.request(url, { method: 'PUT', headers: { 'transfer-encoding': 'chunked', trailer: 'x-sha256' } });
  req.on('error', reject);
  req.on('response', (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (text: string) => (body += text));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
  });
  const hash = createHash('sha256');
  // 1 MiB reads: fewer, larger writes to the socket, as curl's buffer does.
  const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
  source.on('data', (piece) => hash.update(piece));
  source.on('error', reject);
  source.on('end', () => {
    req.addTrailers({ 'x-sha256': hash.digest('hex') });
    req.end();
  });
  source.pipe(req, { end: false });
});
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
if (answer.status !== 200) {
  console.error(`the server answered ${answer.status}: ${answer.body}`);
  process.exit(1);
}
console.log(`uploaded ${size} in ${ms.toFixed(1)} ms, cpu ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s`);
