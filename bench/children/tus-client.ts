/**
 * A peer of the throughput benchmark, the client half: tus-js-client uploading one file in one
 * PATCH (chunkSize Infinity: the whole file streamed from disk in one request, its fastest form).
 * Prints `uploaded <bytes> in <ms> ms, cpu <seconds> s` where the time and CPU run from the
 * creation request to the end of the PATCH (start-up excluded, as for ours).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as tus from 'tus-js-client';

const [file, endpoint] = process.argv.slice(2);
if (!file || !endpoint) throw new Error('usage: tus-client.ts <file> <endpoint>');
const size = (await stat(file)).size;
const cpuBefore = process.cpuUsage();
const started = performance.now();
await new Promise<void>((resolve, reject) => {
  const upload = new tus.Upload(createReadStream(file), {
    endpoint,
    uploadSize: size,
    chunkSize: Number.POSITIVE_INFINITY,
    retryDelays: [],
    metadata: { filename: 'recording.bin' },
    onSuccess: () => resolve(),
    onError: reject,
  });
  upload.start();
});
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
console.log(`uploaded ${size} in ${ms.toFixed(1)} ms, cpu ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s`);
