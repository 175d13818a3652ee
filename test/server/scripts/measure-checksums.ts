/**
 * Measures the per-chunk checksum candidates on this machine, one core, for docs/http-api.md:
 * CRC-32 (zlib, built into Node), MD5 (the legacy API's checksum) and SHA-256 (OpenSSL). Not a
 * test: `npx tsx test/server/scripts/measure-checksums.ts`.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import zlib from 'node:zlib';

const buffer = randomBytes(64 * 1024 * 1024);
const chunk = 8 * 1024 * 1024;

function rate(name: string, run: () => void, rounds = 8): number {
  run();
  const start = performance.now();
  for (let i = 0; i < rounds; i += 1) run();
  const seconds = (performance.now() - start) / 1000;
  const mibps = (rounds * buffer.length) / 1024 / 1024 / seconds;
  console.log(`${name.padEnd(10)} ${mibps.toFixed(0).padStart(6)} MiB/s`);
  return Math.round(mibps);
}

console.log(`${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, 64 MiB buffer hashed in 8 MiB chunks`);
const crc32 = rate(
  'CRC-32',
  () => {
    let value = 0;
    for (let offset = 0; offset < buffer.length; offset += chunk)
      value = zlib.crc32(buffer.subarray(offset, offset + chunk), value);
  },
  32,
);
const md5 = rate('MD5', () => {
  const hash = createHash('md5');
  for (let offset = 0; offset < buffer.length; offset += chunk) hash.update(buffer.subarray(offset, offset + chunk));
  hash.digest();
});
const sha256 = rate('SHA-256', () => {
  const hash = createHash('sha256');
  for (let offset = 0; offset < buffer.length; offset += chunk) hash.update(buffer.subarray(offset, offset + chunk));
  hash.digest();
});
console.log(JSON.stringify({ measure: 'checksums', crc32, md5, sha256 }));
