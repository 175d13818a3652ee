import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { statusKiB } from '../support/proc-usage.js';
import { startServerProgram } from '../support/processes.js';
import { fig } from '../support/units.js';

const FULL_SESSIONS = 100_000;
const QUICK_SESSIONS = 10_000;
/** Requests in flight while the sessions are created. */
const CONCURRENCY = 32;

/**
 * Abandoned sessions do not hold memory (issue 11, point 13): a client creates sessions and never
 * sends a byte. The server's RSS is read before, right after the last create, once the idle
 * working state was dropped (runtimes idle 60 s), and after the sessions expired and were
 * deleted. The expiry (--duration, default 900 s, quick 120 s) must be longer than creating them
 * takes, or some expire before the "after creating" figure; the benchmark says so if they did.
 */
export const abandonedSessions: Benchmark = {
  name: 'abandoned-sessions',
  summary: 'server RSS after 100,000 abandoned sessions and after their expiry',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const count = args.files ?? (args.quick ? QUICK_SESSIONS : FULL_SESSIONS);
    const expiry = args.duration ?? (args.quick ? 120 : 900);
    const dir = await makeTempDir('abandoned');
    try {
      const storage = path.join(dir, 'server');
      const server = await startServerProgram(
        storage,
        ['--no-rate-limit', '--max-open-sessions', '0', '--session-expiry', String(expiry), '--cleanup-interval', '5'],
        { reportDir: dir },
      );
      const rssMiB = (): number => (statusKiB(server.handle.pid, 'VmRSS') ?? 0) / 1024;
      try {
        say(`${count} sessions of 4 KiB created and abandoned (${CONCURRENCY} at once), expiry ${expiry} s`);
        const before = rssMiB();
        const started = Date.now();
        let next = 0;
        const create = async (): Promise<void> => {
          for (let n = next++; n < count; n = next++) {
            const response = await fetch(`${server.url}/v1/sessions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                path: `abandoned/${Math.floor(n / 1000)}/${n}.bin`,
                size: 4096,
                chunkSize: 4096,
                fingerprint: `fp1:${randomBytes(32).toString('hex')}`,
              }),
            });
            const text = await response.text();
            if (response.status !== 201) throw new Error(`create ${n} answered ${response.status}: ${text}`);
          }
        };
        await Promise.all(Array.from({ length: CONCURRENCY }, create));
        const createSeconds = (Date.now() - started) / 1000;
        const afterCreate = rssMiB();
        say(
          `created in ${createSeconds.toFixed(0)} s (${(count / createSeconds).toFixed(0)}/s): ` +
            `RSS ${afterCreate.toFixed(0)} MiB (before ${before.toFixed(0)} MiB)`,
        );
        if (createSeconds >= expiry) say(`WARNING: creating took longer than the expiry; some had expired already`);
        // The idle working state goes after 60 s; the check runs at each expiry sweep (5 s here).
        await new Promise((resolve) => setTimeout(resolve, 70_000));
        const afterIdle = rssMiB();
        say(`70 s later (idle working state dropped): RSS ${afterIdle.toFixed(0)} MiB`);
        const temp = path.join(storage, 'temp');
        for (;;) {
          const left = (await readdir(temp)).length;
          if (left === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
        const expiredAfter = (Date.now() - started) / 1000;
        const afterExpiry = rssMiB();
        const peak = server.peakRssKiB() / 1024;
        say(
          `all expired and deleted ${expiredAfter.toFixed(0)} s after the start: ` +
            `RSS ${afterExpiry.toFixed(0)} MiB; peak ${peak.toFixed(0)} MiB`,
        );
        return {
          figures: {
            sessions: count,
            creates_per_s: fig(count / createSeconds, 0),
            rss_before_mib: fig(before, 0),
            rss_after_create_mib: fig(afterCreate, 0),
            rss_after_idle_mib: fig(afterIdle, 0),
            rss_after_expiry_mib: fig(afterExpiry, 0),
            peak_rss_mib: fig(peak, 0),
          },
          targets: {
            rss_after_expiry_mib: { value: afterExpiry, op: '<=', limit: Math.round(before + 64), unit: 'MiB' },
          },
          row: {
            Sessions: String(count),
            'Creates/s': (count / createSeconds).toFixed(0),
            'RSS MiB before': before.toFixed(0),
            'RSS MiB after creating': afterCreate.toFixed(0),
            'RSS MiB 70 s idle': afterIdle.toFixed(0),
            'RSS MiB after expiry': afterExpiry.toFixed(0),
            'Peak RSS MiB': peak.toFixed(0),
          },
        };
      } finally {
        await server.stop();
      }
    } finally {
      await removeTempDir(dir);
    }
  },
};
