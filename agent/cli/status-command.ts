import { existsSync } from 'node:fs';
import path from 'node:path';
import { formatSize } from '../../common/config/index.js';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { Journal, type UploadRow } from '../engine/journal/journal.js';
import { StateLock } from '../engine/journal/state-lock.js';
import { JOURNAL_FILE } from '../engine/journal/journal-schema.js';
import { exitCodes } from './exit-codes.js';
import type { Invocation } from './invocation.js';

/** How many finished uploads `status` lists. */
const RECENT = 20;

/**
 * `status`: the queue and the recent history, read from the journal (read-only, so it works
 * while the agent runs), and whether an agent holds the state directory.
 */
export function statusCommand(invocation: Invocation, out: NodeJS.WritableStream): number {
  const stateDir = path.resolve(invocation.config.stateDir);
  if (!existsSync(path.join(stateDir, JOURNAL_FILE))) {
    throw new UploadError('STATE_DIR', `No agent journal in ${stateDir} (no agent has run with this --state-dir yet)`);
  }
  let running: boolean;
  try {
    StateLock.acquire(stateDir).release();
    running = false;
  } catch (error) {
    if (!isUploadError(error, 'STATE_DIR_LOCKED')) throw error;
    running = true;
  }
  const journal = Journal.open(stateDir, { readonly: true });
  let rows: UploadRow[];
  /** When each listed file closed on the robot (its mtime), from its session or its completion record. */
  const closedAt = new Map<string, number>();
  try {
    rows = journal.loadUploads(RECENT);
    for (const row of rows) {
      const mtime = row.mtimeMs ?? journal.completedFile(row.localPath)?.mtimeMs;
      if (mtime !== undefined) closedAt.set(row.id, mtime);
    }
  } finally {
    journal.close();
  }
  const pending = rows.filter((row) => row.state === 'queued');
  const failed = rows.filter((row) => row.state === 'failed');
  const done = rows.filter((row) => row.state === 'completed').reverse();
  const now = Date.now();
  const oldest = Math.min(now, ...pending.map((row) => closedAt.get(row.id) ?? Date.parse(row.queuedAt)));
  const pendingBytes = pending.reduce((sum, row) => sum + row.bytesTotal, 0);
  /** Closed on the robot → verified on the server, in seconds. */
  const latency = (row: UploadRow): number | undefined => {
    const closed = closedAt.get(row.id);
    const finished = row.finishedAt === undefined ? Number.NaN : Date.parse(row.finishedAt);
    return closed === undefined || !Number.isFinite(finished) ? undefined : Math.max(0, (finished - closed) / 1000);
  };
  const latencies = done.map(latency).filter((value): value is number => value !== undefined);
  const lines = [
    `State directory: ${stateDir} (${running ? 'an agent is running' : 'no agent running'})`,
    `Queue: ${pending.length} pending (${formatSize(pendingBytes)}), ${failed.length} failed` +
      (pending.length > 0 ? `; oldest pending closed ${seconds((now - oldest) / 1000)} ago` : ''),
    ...(latencies.length > 0
      ? [
          `Recording to verified: last ${seconds(latencies[latencies.length - 1] ?? 0)}, ` +
            `longest of the last ${latencies.length} ${seconds(Math.max(...latencies))}`,
        ]
      : []),
    ...[...pending, ...failed].map(
      (row) =>
        `  ${row.state.padEnd(9)} ${formatSize(row.bytesTotal).padStart(10)}  ` +
        `${row.remotePath}${row.lastError ? `  (${row.errorCode ?? 'error'}: ${row.lastError})` : ''}`,
    ),
    `Recent uploads (${done.length}):`,
    ...done.map(
      (row) =>
        `  ${row.finishedAt ?? ''}  ${formatSize(row.bytesTotal).padStart(10)}  ` +
        `${row.remotePath}  sha256 ${(row.sha256 ?? '').slice(0, 16)}…` +
        (latency(row) === undefined ? '' : `  (closed → verified ${seconds(latency(row) ?? 0)})`),
    ),
  ];
  out.write(`${lines.join('\n')}\n`);
  return exitCodes.OK;
}

/** 42 s, 3.5 min, 2.1 h. */
function seconds(value: number): string {
  if (value < 120) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}
