/**
 * Measures how long completing an upload sent in order takes (issue 2: "well under a second"
 * for 1 GiB). Not a test: run it with `npx tsx test/server/scripts/measure-complete.ts [MiB]`.
 * The server runs as a child process (dist/, so build first); the client sends random 8 MiB
 * chunks in order, one at a time, then times POST /complete, which includes the fsync of the
 * file, the rename and the fsync of its folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Crc32 } from '../../../common/protocol/chunk-checksum.js';
import { DEFAULT_CHUNK_SIZE, routes } from '../../../common/protocol/native-protocol.js';
import { fingerprintOf } from '../../../common/protocol/fingerprint.js';
import { spawnServer } from '../../helpers/spawn-server.js';
import { createTempDir } from '../../helpers/tmp-dir.js';

const mib = Number(process.argv[2] ?? 1024);
const size = mib * 1024 * 1024;
const chunkSize = DEFAULT_CHUNK_SIZE;
const dir = await createTempDir('measure-complete');
const server = await spawnServer(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir.path, '--no-rate-limit']);
try {
  const count = Math.ceil(size / chunkSize);
  const seed = randomBytes(chunkSize);
  const chunk = (i: number): Buffer => {
    const data = Buffer.from(seed.subarray(0, Math.min(chunkSize, size - i * chunkSize)));
    data.writeUInt32BE(i, 0);
    return data;
  };
  const samples =
    size <= 2 * 1024 * 1024
      ? [Buffer.concat(Array.from({ length: count }, (_, i) => chunk(i)))]
      : [chunk(0).subarray(0, 1024 * 1024), chunk(count - 1).subarray(-1024 * 1024)];
  const created = await fetch(server.url + routes.sessions, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: 'measure/one.bin', size, fingerprint: fingerprintOf(size, samples), chunkSize }),
  });
  const { id } = (await created.json()) as { id: string };
  const hash = createHash('sha256');
  const sendStart = performance.now();
  for (let i = 0; i < count; i += 1) {
    const data = chunk(i);
    hash.update(data);
    const answer = await fetch(server.url + routes.chunk(id, i), {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'x-chunk-checksum': new Crc32().update(data).header() },
      body: data,
    });
    if (answer.status !== 200) throw new Error(`chunk ${i}: ${answer.status} ${await answer.text()}`);
  }
  const sendSeconds = (performance.now() - sendStart) / 1000;
  const sha256 = hash.digest('hex');
  const start = performance.now();
  const completed = await fetch(server.url + routes.complete(id), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sha256 }),
  });
  const completeMs = performance.now() - start;
  const body = (await completed.json()) as { state?: string; sha256?: string };
  if (completed.status !== 200 || body.sha256 !== sha256)
    throw new Error(`complete failed: ${completed.status} ${JSON.stringify(body)}`);
  console.log(
    `sent ${mib} MiB in order in ${sendSeconds.toFixed(1)} s ` +
      `(${(mib / sendSeconds).toFixed(0)} MiB/s); complete took ${completeMs.toFixed(0)} ms`,
  );
  console.log(
    JSON.stringify({
      measure: 'complete',
      sizeMiB: mib,
      completeMs: Math.round(completeMs),
      sendMiBps: Math.round(mib / sendSeconds),
    }),
  );
} finally {
  await server.stop();
  await dir.remove();
}
