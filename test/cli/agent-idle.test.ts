import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { VerifiedFile } from '../../agent/app/upload-agent.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { startHarness, type Harness } from './support/agent-harness.js';

describe('UploadAgent.onIdle()', { timeout: 120_000 }, () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("waits for a bag's metadata.yaml, which is queued only once the rest of the bag is verified", async () => {
    h = await startHarness();
    const bag = path.join(path.dirname(h.root), 'outside', 'run1');
    mkdirSync(bag, { recursive: true });
    writeFileSync(path.join(bag, 'run1_0.mcap'), syntheticMcap(200 * 1024));
    writeFileSync(path.join(bag, 'run1_1.mcap'), syntheticMcap(50 * 1024));
    writeFileSync(path.join(bag, 'metadata.yaml'), 'rosbag2_bagfile_information:\n  version: 5\n');
    const verified: string[] = [];
    h.agent.on('verified', (file: VerifiedFile) => verified.push(file.remotePath));
    const result = await h.agent.enqueue(bag);
    expect(result.accepted).toBe(true);
    await h.agent.onIdle();
    // Between the engine going idle after the splits and metadata.yaml being queued, the agent is busy, not idle.
    expect(verified).toEqual(expect.arrayContaining(['run1/run1_0.mcap', 'run1/run1_1.mcap']));
    expect(verified.at(-1)).toBe('run1/metadata.yaml');
    expect(h.stored('run1/metadata.yaml')?.toString()).toContain('version: 5');
    expect(h.agent.engine.idle).toBe(true);
  });
});
