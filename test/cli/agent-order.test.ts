import { writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { UploadSnapshot } from '../../agent/engine/upload-events.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHarness, type Harness } from './support/agent-harness.js';
import type { RecordingProxy } from './support/recording-proxy.js';

/**
 * Issue 16 point 12, the order promise of docs/agent.md "Order": within a bag, splits start in
 * index order (a split is handed to the engine only after every earlier one, and the engine starts
 * uploads in the order it was given them); with maxConcurrentUploads N at most N files are on the
 * wire at once (small files share slots: up to N × smallFilesPerSlot of them), so they may finish (be
 * verified) in any order; metadata.yaml starts only after every other file of its bag was verified.
 * With N = 1 and one file per slot they are verified in index order.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A big first split (the small ones after it may finish first), one more in the middle, and many small ones:
 * released together, they are handed over in one go, where the order used to depend on which stat() returned first. */
const SIZES = [
  768 * 1024,
  ...Array.from({ length: 30 }, () => 20_000),
  300_000,
  ...Array.from({ length: 30 }, () => 20_000),
];

async function recordBag(h: Harness, bag: string): Promise<string[]> {
  mkdirSync(path.join(h.root, bag));
  const remotes = SIZES.map((_, index) => `${bag}/${bag}_${index}.db3`);
  // A finished recording copied in at once: every split is closed, so all are released together.
  for (const [index, size] of SIZES.entries()) writeFileSync(path.join(h.root, remotes[index]!), randomBytes(size));
  writeFileSync(path.join(h.root, bag, 'metadata.yaml'), 'rosbag2_bagfile_information: {}\n');
  return remotes;
}

/** When each file was on the wire at the proxy: from its first request's start to its completion's answer. */
function wireIntervals(proxy: RecordingProxy, remotes: string[]): { remote: string; from: number; to: number }[] {
  return remotes.map((remote) => ({
    remote,
    from: Math.min(...proxy.requests.filter((r) => r.path === remote).map((r) => r.startedAt)),
    to: proxy.completionsFor(remote)[0]!.finishedAt!,
  }));
}

function mostAtOnce(intervals: { from: number; to: number }[]): number {
  const events = intervals.flatMap((i) => [
    { at: i.from, delta: 1 },
    { at: i.to, delta: -1 },
  ]);
  // At the same instant an end counts before a start.
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const event of events) {
    now += event.delta;
    most = Math.max(most, now);
  }
  return most;
}

describe('the order of a bag on the wire', { timeout: 180_000 }, () => {
  for (const [concurrency, perSlot] of [
    [2, 1],
    [1, 1],
    [2, 8],
  ] as const) {
    const title =
      `maxConcurrentUploads ${concurrency}, smallFilesPerSlot ${perSlot}: splits start in index order, ` +
      `at most ${concurrency * perSlot} on the wire, metadata.yaml after all were verified`;
    it(title, async () => {
      const h = await startHarness({
        maxConcurrentUploads: concurrency,
        smallFilesPerSlot: perSlot,
        bandwidthLimit: 2 * 1024 * 1024,
        chunkSize: 256 * 1024,
        quietPeriod: 0.2,
      });
      cleanups.push(() => h.close());
      const started: UploadSnapshot[] = [];
      h.agent.engine.on('started', (upload) => started.push(upload));
      const remotes = await recordBag(h, 'ord');
      await waitFor(() => h.stored('ord/metadata.yaml'), 'the whole bag on the server', 120_000);

      expect(started.map((upload) => upload.remotePath)).toEqual([...remotes, 'ord/metadata.yaml']);
      const splits = wireIntervals(h.proxy, remotes);
      expect(mostAtOnce(splits)).toBeLessThanOrEqual(concurrency * perSlot);
      const metadataFrom = Math.min(
        ...h.proxy.requests.filter((r) => r.path === 'ord/metadata.yaml').map((r) => r.startedAt),
      );
      for (const split of splits) expect(metadataFrom, split.remote).toBeGreaterThan(split.to);
      const verifiedOrder = [...splits].sort((a, b) => a.to - b.to).map((split) => split.remote);
      if (concurrency === 1 && perSlot === 1) expect(verifiedOrder).toEqual(remotes);
      // With two on the wire, the small splits after the big first one may well be verified before it.
    });
  }
});
