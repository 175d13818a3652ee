/**
 * Server memory with many concurrent uploaders (issue 2: RSS <= 150 MiB with 50). Not a test:
 * `npx tsx test/server/scripts/measure-fan-in.ts [uploaders] [MiB each]`. The server runs as a
 * child process; its peak RSS is read from /proc/<pid>/status (VmHWM) at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { Crc32 } from '../../../common/protocol/chunk-checksum.js';
import { fingerprintOf } from '../../../common/protocol/fingerprint.js';
import { DEFAULT_CHUNK_SIZE, routes } from '../../../common/protocol/native-protocol.js';
import { spawnServer } from '../../helpers/spawn-server.js';
import { createTempDir } from '../../helpers/tmp-dir.js';

const uploaders = Number(process.argv[2] ?? 50);
const mib = Number(process.argv[3] ?? 20);
const size = mib * 1024 * 1024;
const chunkSize = DEFAULT_CHUNK_SIZE;
const dir = await createTempDir('fan-in');
const server = await spawnServer(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir.path, '--no-rate-limit']);
const status = async (field: string): Promise<number> => Number(/(\d+) kB/.exec((await readFile(`/proc/${server.child.pid}/status`, 'utf8')).split('\n').find((l) => l.startsWith(field)) ?? '')?.[1] ?? 0) / 1024;
try {
  const base = randomBytes(chunkSize);
  const start = performance.now();
  let errors = 0;
  const idle = await status('VmRSS:');
  await Promise.all(
    Array.from({ length: uploaders }, async (_, u) => {
      const count = Math.ceil(size / chunkSize);
      const chunk = (i: number): Buffer => {
        const data = Buffer.from(base.subarray(0, Math.min(chunkSize, size - i * chunkSize)));
        data.writeUInt32BE(u, 0);
        data.writeUInt32BE(i, 4);
        return data;
      };
      const samples = [chunk(0).subarray(0, 1024 * 1024), chunk(count - 1).subarray(-1024 * 1024)];
      const created = await fetch(server.url + routes.sessions, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: `u${u}/file.bin`, size, fingerprint: fingerprintOf(size, samples) }),
      });
      const { id } = (await created.json()) as { id: string };
      const hash = createHash('sha256');
      for (let i = 0; i < count; i += 1) {
        const data = chunk(i);
        hash.update(data);
        const answer = await fetch(server.url + routes.chunk(id, i), {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream', 'x-chunk-checksum': new Crc32().update(data).header() },
          body: data,
        });
        if (answer.status !== 200) errors += 1;
        await answer.arrayBuffer();
      }
      const done = await fetch(server.url + routes.complete(id), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: hash.digest('hex') }) });
      if (done.status !== 200) errors += 1;
      await done.arrayBuffer();
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const peak = await status('VmHWM:');
  console.log(`${uploaders} uploaders × ${mib} MiB in ${seconds.toFixed(1)} s (${((uploaders * mib) / seconds).toFixed(0)} MiB/s), ${errors} errors; server RSS idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`);
  console.log(JSON.stringify({ measure: 'fan-in', uploaders, mib, errors, seconds: Number(seconds.toFixed(1)), serverIdleRssMiB: Math.round(idle), serverPeakRssMiB: Math.round(peak) }));
} finally {
  await server.stop();
  await dir.remove();
}
