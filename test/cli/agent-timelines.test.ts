import { afterEach, describe, expect, it } from 'vitest';
import { fixtureBag, replayTimeline, TIMELINES, type TimelineName } from '../helpers/bag-writer.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHarness, type Harness } from './support/agent-harness.js';

/**
 * Acceptance: the agent (watcher → engine → real server) replays the three real rosbag2
 * timelines with the same order and gaps. Each split is uploaded exactly once, only after the
 * writer closed it, in index order, metadata.yaml last, and the server's copy of the bag is
 * byte-identical to the fixture.
 */
let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('the agent replaying the real rosbag2 timelines', { timeout: 180_000 }, () => {
  for (const name of Object.keys(TIMELINES) as TimelineName[]) {
    it(`${name}: every split once, only after it was closed, metadata.yaml last, byte-identical`, async () => {
      harness = await startHarness();
      const h = harness;
      const bag = TIMELINES[name].bag;
      const fixture = fixtureBag(bag);
      // The order the engine starts uploads in (first start of each file). Two uploads run at
      // once, so two adjacent splits may reach the server in either order; the agent's own
      // order is what "index order" promises.
      const startOrder: string[] = [];
      h.agent.engine.on('started', (upload) => {
        if (!startOrder.includes(upload.remotePath)) startOrder.push(upload.remotePath);
      });
      const writer = await replayTimeline(name, h.root);
      const expected = [...fixture.keys()].map((file) => `${bag}/${file}`);
      await waitFor(
        () => expected.every((remote) => h.stored(remote) !== undefined),
        `all of ${bag} on the server`,
        30_000,
      );
      // A late duplicate (a rescan, a missed event) would show up here.
      await h.agent.watcher!.rescan();
      await new Promise((resolve) => setTimeout(resolve, 1500));

      for (const [file, bytes] of fixture) {
        const remote = `${bag}/${file}`;
        expect(h.stored(remote)?.equals(bytes), `${remote} byte-identical`).toBe(true);
        const sessions = h.proxy.uploadsFor(remote);
        expect(sessions, `${remote}: one session`).toHaveLength(1);
        expect(h.proxy.completionsFor(remote), `${remote}: one completion`).toHaveLength(1);
        const closedAt = writer.log.closedAt(remote);
        expect(closedAt, `${remote} was closed by the writer`).toBeDefined();
        expect(sessions[0]!.startedAt, `${remote}: session created after the writer closed it`).toBeGreaterThan(
          closedAt!,
        );
      }
      // Nothing else reached the server: in compression mode, no plain .mcap.
      expect(new Set(h.proxy.uploadsFor().map((r) => r.path))).toEqual(new Set(expected));

      const splits = expected.filter((remote) => !remote.endsWith('metadata.yaml'));
      const byIndex = [...splits].sort((a, b) => index(a) - index(b));
      expect(
        startOrder.filter((remote) => splits.includes(remote)),
        'splits started in index order',
      ).toEqual(byIndex);
      expect(startOrder.at(-1), 'metadata.yaml started last').toBe(`${bag}/metadata.yaml`);
      const metadataCreated = h.proxy.uploadsFor(`${bag}/metadata.yaml`)[0]!.startedAt;
      for (const remote of splits) {
        expect(metadataCreated, `metadata.yaml after ${remote} was verified`).toBeGreaterThan(
          h.proxy.completionsFor(remote)[0]!.finishedAt!,
        );
      }
    });
  }
});

function index(remote: string): number {
  return Number(/_(\d+)\.(mcap|db3)/.exec(remote)![1]);
}
