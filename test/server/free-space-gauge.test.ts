import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalDiskStorage } from '../../server/index.js';
import { FreeSpaceGauge } from '../../server/uploads/free-space-gauge.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

const MiB = 1024 * 1024;
let dir: TempDir;
let storage: LocalDiskStorage;

beforeAll(async () => {
  dir = await createTempDir('free-space');
  storage = await LocalDiskStorage.open(dir.path);
});
afterAll(async () => {
  await dir?.remove();
});

describe('FreeSpaceGauge (admission checks without a statfs per request)', () => {
  it('subtracts every admitted upload from one measurement, so a burst is judged against what is left', async () => {
    const gauge = new FreeSpaceGauge(storage, Number.POSITIVE_INFINITY);
    const first = await gauge.available();
    expect(first).toBeGreaterThan(0);
    gauge.admit(600 * MiB);
    gauge.admit(400 * MiB);
    expect(await gauge.available()).toBe(first - 1000 * MiB);
    // Within its age the measurement is reused: a file written meanwhile is not seen.
    await writeFile(path.join(dir.path, 'x.bin'), Buffer.alloc(MiB));
    expect(await gauge.available()).toBe(first - 1000 * MiB);
  });

  it('measures again once its measurement is too old, and concurrent callers share one measurement', async () => {
    const gauge = new FreeSpaceGauge(storage, 0);
    gauge.admit(600 * MiB);
    const [a, b] = await Promise.all([gauge.available(), gauge.available()]);
    // A fresh measurement forgets what was admitted before it.
    expect(Math.abs(a - (await storage.freeSpace()))).toBeLessThan(512 * MiB);
    expect(a).toBe(b);
  });
});
