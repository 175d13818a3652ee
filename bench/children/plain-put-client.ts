/**
 * Baseline (a) of the throughput benchmark, the client half: one streaming HTTP PUT of a file
 * with undici (the agent's HTTP client), read with 1 MiB reads. Prints `start` right before the
 * request and `done <status> <answer>` once the answer arrived; the benchmark times the two lines.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request } from 'undici';

const [url, file] = process.argv.slice(2);
if (!url || !file) throw new Error('usage: plain-put-client.ts <url> <file>');
const { size } = await stat(file);
console.log('start');
const answer = await request(url, {
  method: 'PUT',
  headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
  body: createReadStream(file, { highWaterMark: 1024 * 1024 }),
});
const text = await answer.body.text();
console.log(`done ${answer.statusCode} ${text}`);
process.exit(answer.statusCode === 200 ? 0 : 1);
