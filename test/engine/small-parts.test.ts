import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TransferCompression, isPrecompressed } from '../../agent/engine/compression/transfer-compression.js';
import { ReachabilityProbe } from '../../agent/engine/connectivity/reachability-probe.js';
import { RunningHash } from '../../agent/engine/hashing/running-hash.js';
import { parseServerUrl } from '../../agent/engine/transport/server-url.js';
import { sha256Of } from '../helpers/random-file.js';
import { waitFor } from '../helpers/wait-for.js';

describe('parseServerUrl', () => {
  it("accepts the legacy API's trailing /upload and keeps a reverse-proxy prefix", () => {
    expect(parseServerUrl('https://host:8080/upload')).toMatchObject({
      origin: 'https://host:8080',
      prefix: '',
      https: true,
    });
    expect(parseServerUrl('https://host:8080/upload/')).toMatchObject({ prefix: '' });
    expect(parseServerUrl('http://127.0.0.1:8080')).toMatchObject({ origin: 'http://127.0.0.1:8080', prefix: '' });
    expect(parseServerUrl('https://example.com/robots/upload')).toMatchObject({
      prefix: '/robots',
      href: 'https://example.com/robots',
    });
    expect(() => parseServerUrl('ftp://x')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => parseServerUrl('https://user:pw@x')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('TransferCompression', () => {
  it('never compresses already-compressed formats', async () => {
    for (const name of ['a.mcap.zstd', 'b.zst', 'c.gz', 'd.bz2', 'e.xz', 'f.LZ4'])
      expect(isPrecompressed(name)).toBe(true);
    const compression = new TransferCompression(true, 'x.mcap.zstd');
    const data = Buffer.alloc(100_000, 'a');
    expect(await compression.encode(data)).toEqual({ body: data, encoding: 'identity' });
  });

  it('is off by default and for data whose first chunk shrinks less than 10%', async () => {
    expect((await new TransferCompression(false, 'x.db3').encode(Buffer.alloc(10_000))).encoding).toBe('identity');
    const random = new TransferCompression(true, 'x.db3');
    expect((await random.encode(randomBytes(100_000))).encoding).toBe('identity');
    expect(random.state).toBe('off');
    expect((await random.encode(Buffer.alloc(100_000))).encoding).toBe('identity');
  });

  it('gzips compressible data, and the decoded bytes are the original', async () => {
    const compression = new TransferCompression(true, 'x.db3');
    const data = Buffer.from('ros2 '.repeat(50_000));
    const encoded = await compression.encode(data);
    expect(encoded.encoding).toBe('gzip');
    expect(encoded.body.length).toBeLessThan(data.length / 2);
    expect(gunzipSync(encoded.body).equals(data)).toBe(true);
    expect(compression.state).toBe('on');
  });
});

describe('RunningHash', () => {
  it('adopts a fork only when told, so a retried chunk is hashed once', () => {
    const a = randomBytes(1000);
    const b = randomBytes(1000);
    const hash = new RunningHash();
    const fork1 = hash.fork();
    fork1.update(a);
    hash.adopt(fork1, a.length);
    const failed = hash.fork();
    failed.update(b); // this attempt failed: dropped
    const retry = hash.fork();
    retry.update(b);
    hash.adopt(retry, b.length);
    expect(hash.digest()).toBe(sha256Of(Buffer.concat([a, b])));
    expect(hash.bytes).toBe(2000);
  });
});

describe('ReachabilityProbe', () => {
  it('backs off exponentially with jitter between min and max, and stops once reachable', async () => {
    const probe = new ReachabilityProbe({
      check: async () => false,
      minDelayMs: () => 1000,
      maxDelayMs: () => 60_000,
      onReachable: () => undefined,
      random: () => 1,
    });
    expect([0, 1, 2, 3, 10].map((n) => probe.delayAfter(n))).toEqual([1000, 2000, 4000, 8000, 60_000]);
    const low = new ReachabilityProbe({
      check: async () => false,
      minDelayMs: () => 1000,
      maxDelayMs: () => 60_000,
      onReachable: () => undefined,
      random: () => 0,
    });
    expect(low.delayAfter(0)).toBe(500);

    let calls = 0;
    let reachable = 0;
    const live = new ReachabilityProbe({
      check: async () => {
        calls += 1;
        return calls >= 3;
      },
      minDelayMs: () => 5,
      maxDelayMs: () => 20,
      onReachable: () => (reachable += 1),
    });
    live.start();
    await waitFor(() => reachable === 1, 'the condition');
    expect(calls).toBe(3);
    expect(live.running).toBe(false);
  });
});
