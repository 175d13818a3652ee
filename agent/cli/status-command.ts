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
  try {
    rows = journal.loadUploads(RECENT);
  } finally {
    journal.close();
  }
  const pending = rows.filter((row) => row.state === 'queued');
  const failed = rows.filter((row) => row.state === 'failed');
  const done = rows.filter((row) => row.state === 'completed').reverse();
  const lines = [
    `State directory: ${stateDir} (${running ? 'an agent is running' : 'no agent running'})`,
    `Queue: ${pending.length} pending, ${failed.length} failed`,
    ...[...pending, ...failed].map(
      (row) =>
        `  ${row.state.padEnd(9)} ${formatSize(row.bytesTotal).padStart(10)}  ` +
        `${row.remotePath}${row.lastError ? `  (${row.errorCode ?? 'error'}: ${row.lastError})` : ''}`,
    ),
    `Recent uploads (${done.length}):`,
    ...done.map(
      (row) =>
        `  ${row.finishedAt ?? ''}  ${formatSize(row.bytesTotal).padStart(10)}  ` +
        `${row.remotePath}  sha256 ${(row.sha256 ?? '').slice(0, 16)}…`,
    ),
  ];
  out.write(`${lines.join('\n')}\n`);
  return exitCodes.OK;
}
