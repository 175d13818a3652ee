import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, type UploadRow } from '../../agent/engine/journal/journal.js';
import { StateLock } from '../../agent/engine/journal/state-lock.js';
import { createTempDir, type TempDir } from '../helpers/tmp-dir.js';

function row(id: string, seq: number): UploadRow {
  return {
    id,
    seq,
    localPath: `/data/${id}.mcap`,
    remotePath: `bag/${id}.mcap`,
    bagName: 'bag',
    priority: 5,
    metadata: { robot: 'r1' },
    replace: false,
    state: 'queued',
    bytesTotal: 100,
    size: undefined,
    mtimeMs: undefined,
    sessionId: undefined,
    sessionServer: undefined,
    chunkSize: undefined,
    sha256: undefined,
    errorCode: undefined,
    lastError: undefined,
    queuedAt: new Date().toISOString(),
    startedAt: undefined,
    finishedAt: undefined,
  };
}

describe('Journal', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await createTempDir('engine-journal');
  });
  afterEach(async () => {
    await dir.remove();
  });

  it('keeps the queue, sessions, acknowledged chunks and completed files across reopening', () => {
    const journal = Journal.open(dir.path);
    journal.insertUploads([row('a', 1), row('b', 2)]);
    journal.insertUploads([row('c', 3)]);
    const startedAt = new Date().toISOString();
    journal.setSession('a', startedAt, {
      sessionId: 's-a',
      sessionServer: 'http://x',
      chunkSize: 10,
      size: 100,
      mtimeMs: 5,
    });
    journal.ackChunk('a', 0);
    journal.ackChunk('a', 1);
    journal.ackChunk('a', 1);
    journal.markFailed('b', 'INVALID_PATH', 'bad path', new Date().toISOString());
    journal.markCompleted(
      { id: 'c', sha256: 'f'.repeat(64), finishedAt: new Date().toISOString() },
      {
        localPath: '/data/c.mcap',
        remotePath: 'bag/c.mcap',
        server: 'http://x',
        size: 100,
        mtimeMs: 7,
        sha256: 'f'.repeat(64),
        completedAt: new Date().toISOString(),
      },
    );
    journal.close();

    const again = Journal.open(dir.path);
    const rows = again.loadUploads();
    expect(rows.map((r) => [r.id, r.state])).toEqual([
      ['c', 'completed'],
      ['a', 'queued'],
      ['b', 'failed'],
    ]);
    const a = rows.find((r) => r.id === 'a')!;
    expect(a).toMatchObject({
      sessionId: 's-a',
      chunkSize: 10,
      size: 100,
      mtimeMs: 5,
      metadata: { robot: 'r1' },
      startedAt,
    });
    expect(again.ackedChunks('a')).toEqual([0, 1]);
    expect(again.completedFile('/data/c.mcap')).toMatchObject({ size: 100, mtimeMs: 7, sha256: 'f'.repeat(64) });
    expect(again.nextSeq()).toBe(4);
    again.clearSession('a');
    expect(again.ackedChunks('a')).toEqual([]);
    again.requeue('b');
    expect(again.getUpload('b')).toMatchObject({ state: 'queued', lastError: undefined });
    again.deleteUpload('a');
    expect(again.getUpload('a')).toBeUndefined();
    again.close();
  });

  it('one engine per state directory: a second lock is refused until the first is released', () => {
    const first = StateLock.acquire(dir.path);
    expect(() => StateLock.acquire(dir.path)).toThrow(expect.objectContaining({ code: 'STATE_DIR_LOCKED' }));
    first.release();
    const second = StateLock.acquire(dir.path);
    second.release();
  });

  it('an unusable state directory is a clear STATE_DIR error', () => {
    const file = path.join(dir.path, 'a-file');
    writeFileSync(file, 'not a folder');
    expect(() => Journal.open(path.join(file, 'state'))).toThrow(
      expect.objectContaining({ code: 'STATE_DIR', message: expect.stringContaining(file) }),
    );
  });
});
