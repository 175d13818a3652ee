import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readHeldBack } from '../../agent/app/held-back-file.js';
import { assessAgent } from '../../agent/ros/diagnostics.js';
import { DiagnosticLevel } from '../../agent/ros/diagnostic-levels.js';
import { uploadQueueMessage } from '../../agent/ros/status-messages.js';
import { uploadStatusState } from '../../agent/ros/upload-status-state.js';
import { syntheticMcap } from '../helpers/bag-writer.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { startHarness } from './support/agent-harness.js';

/**
 * Issue 16 point 2, end to end: a split the recorder never closed is held back and visible (warn
 * once, the agent's status, the `~/queue` and `/diagnostics` the ROS node builds from it), then
 * uploaded flagged "recovered, unclosed" in the metadata the server receives, and its bag's
 * metadata.yaml follows.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const STAMP = { sec: 1, nanosec: 0 };

describe('a split that never closes', { timeout: 120_000 }, () => {
  it('is shown held back with its reason, then sent as "recovered, unclosed"; metadata.yaml follows', async () => {
    const logs = captureLogger('info');
    const h = await startHarness(
      { settleTime: 1, quietPeriod: 0.2, unclosedTimeout: 8, rescanInterval: 30 },
      { logger: logs.logger },
    );
    cleanups.push(() => h.close());
    // The agent's whole status, taken at the moment the file is held back (the recovery comes a few seconds later).
    let whenHeld: ReturnType<typeof h.agent.status> | undefined;
    h.agent.watcher!.on('heldBack', () => {
      whenHeld ??= h.agent.status();
    });
    const bag = path.join(h.root, 'crash');
    mkdirSync(bag);
    const cut = syntheticMcap(9000).subarray(0, 7000);
    writeFileSync(path.join(bag, 'crash_0.mcap'), syntheticMcap(4096));
    writeFileSync(path.join(bag, 'crash_1.mcap'), cut);
    writeFileSync(path.join(bag, 'metadata.yaml'), 'x: 1\n');

    // While held back, every view of the agent shows it, with the reason.
    const status = await waitFor(() => whenHeld, 'crash_1 held back');
    expect(status.heldBack).toMatchObject([{ remotePath: 'crash/crash_1.mcap', code: 'unclosed' }]);
    expect(status.heldBack[0]!.reason).toMatch(/never closed: no MCAP end magic/);
    const entry = status.uploads.find((upload) => upload.remotePath === 'crash/crash_1.mcap')!;
    expect(entry.state).toBe('waiting_for_close');
    expect(entry.lastError).toMatch(/^held back: never closed/);
    const queue = uploadQueueMessage(status, STAMP);
    expect(queue.uploads.find((upload) => upload.remote_path === 'crash/crash_1.mcap')).toMatchObject({
      state: uploadStatusState.waiting_for_close,
      last_error: expect.stringMatching(/never closed/),
    });
    const diagnostics = assessAgent(status);
    expect(diagnostics.level).toBe(DiagnosticLevel.WARN);
    expect(diagnostics.message).toMatch(/1 held back \(crash\/crash_1.mcap: unclosed\)/);
    expect(diagnostics.values).toContainEqual({
      key: 'held back: crash/crash_1.mcap',
      value: expect.stringMatching(/never closed/),
    });

    // The `status` command runs in another process: the list is in the state directory too.
    const written = await waitFor(
      () => readHeldBack(h.stateDir)?.files.find((file) => file.remotePath === 'crash/crash_1.mcap'),
      'the held-back list in the state directory',
    );
    expect(written).toMatchObject({ code: 'unclosed', reason: expect.stringMatching(/never closed/) });

    await waitFor(() => h.stored('crash/metadata.yaml'), 'the recovered split, then metadata.yaml', 60_000);
    expect(h.stored('crash/crash_1.mcap')?.equals(cut)).toBe(true);
    const sent = h.proxy.uploadsFor('crash/crash_1.mcap');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.metadata).toMatchObject({
      recovered: 'unclosed',
      reason: expect.stringMatching(/no MCAP end magic, unchanged for/),
    });
    expect(h.proxy.uploadsFor('crash/crash_0.mcap')[0]!.metadata).toBeUndefined();
    expect(h.agent.status().heldBack).toEqual([]);
    await waitFor(() => readHeldBack(h.stateDir)?.files.length === 0, 'the held-back list emptied', 20_000);
    const warnings = logs.entries().filter((line) => line.level === 40);
    expect(warnings.filter((line) => /held back "crash\/crash_1.mcap"/.test(String(line.msg)))).toHaveLength(1);
    expect(
      warnings.filter((line) => /^uploading crash\/crash_1.mcap as "recovered, unclosed"/.test(String(line.msg))),
    ).toHaveLength(1);
  });
});
