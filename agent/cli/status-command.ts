import { existsSync } from 'node:fs';
import path from 'node:path';
import { formatDuration, formatSize } from '../../common/config/index.js';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import type { AgentStatus } from '../app/agent-controller.js';
import { askAgent, CONTROL_SOCKET, type ControlCommand, type RunInfo } from '../app/control-socket.js';
import { Journal, type UploadRow } from '../engine/journal/journal.js';
import { JOURNAL_FILE } from '../engine/journal/journal-schema.js';
import { StateLock } from '../engine/journal/state-lock.js';
import type { UploadSnapshot } from '../engine/upload-events.js';
import { exitCodes } from './exit-codes.js';
import type { Invocation } from './invocation.js';
import { defaultStateDir, lastStateDir, readRunRecord } from './run-record.js';
import { UPLOAD_COMMAND_STATE } from './upload-command.js';

/** How many finished uploads `status` lists. */
const RECENT = 10;

/** One agent's state directory as `status` saw it. */
interface AgentView {
  /** `watch` (the daemon's journal) or `upload` (the one-shot command's, in a subfolder). */
  kind: 'watch' | 'upload';
  stateDir: string;
  running: boolean;
  run: RunInfo | undefined;
  /** Live from the running agent, or rebuilt from the journal. */
  uploads: UploadSnapshot[];
  online: boolean | undefined;
  paused: boolean | undefined;
  lowDisk: boolean | undefined;
}

/** Where `status` looks, and why there (said on the first line, so the user knows how to look elsewhere). */
export function resolveStateDir(invocation: Invocation): { stateDir: string; why: string } {
  const given = path.resolve(invocation.config.stateDir);
  if (invocation.stateDirGiven) return { stateDir: given, why: 'as given' };
  const last = lastStateDir();
  if (last && existsSync(last.stateDir)) {
    return {
      stateDir: last.stateDir,
      why: `the last run's (${last.command}, started ${last.startedAt}); --state-dir reads another`,
    };
  }
  return { stateDir: defaultStateDir(), why: 'the default; --state-dir reads another' };
}

/**
 * `status`: what the agent is doing. From the running agent over its control socket (uploads
 * with bytes, rate and ETA, held-back files, failures), else from its journal. Looks in the
 * state directory of the last run unless one is given, and reads both the daemon's journal and
 * the one-shot upload's.
 */
export async function statusCommand(invocation: Invocation, out: NodeJS.WritableStream): Promise<number> {
  const { stateDir, why } = resolveStateDir(invocation);
  const views: AgentView[] = [];
  const places: [AgentView['kind'], string][] =
    path.basename(stateDir) === UPLOAD_COMMAND_STATE
      ? [['upload', stateDir]]
      : [
          ['watch', stateDir],
          ['upload', path.join(stateDir, UPLOAD_COMMAND_STATE)],
        ];
  for (const [kind, dir] of places) {
    const view = await readView(kind, dir);
    if (view) views.push(view);
  }
  if (views.length === 0) {
    throw new UploadError(
      'STATE_DIR',
      `No agent journal in ${stateDir} (${why}): no agent has run with this state directory yet`,
    );
  }
  if (invocation.json) {
    out.write(`${JSON.stringify({ stateDir, views }, null, 2)}\n`);
    return exitCodes.OK;
  }
  const lines = [`State directory: ${stateDir} (${why})`];
  for (const view of views) lines.push('', ...describe(view));
  out.write(`${lines.join('\n')}\n`);
  return exitCodes.OK;
}

/** `retry`, `pause`, `resume`: sent to the running agent over its control socket. */
export async function controlCommand(
  invocation: Invocation,
  command: Exclude<ControlCommand, 'status'>,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { stateDir, why } = resolveStateDir(invocation);
  for (const dir of [stateDir, path.join(stateDir, UPLOAD_COMMAND_STATE)]) {
    const answer = await askAgent(dir, command);
    if (!answer) continue;
    if (!answer.ok) throw new UploadError('USAGE', `The agent on ${dir} refused ${command}: ${answer.error}`);
    const done =
      command === 'retry'
        ? `${answer.retried ?? 0} failed upload(s) queued again`
        : command === 'pause'
          ? 'paused: no new chunks until `ros2-upload-agent resume`'
          : 'resumed';
    out.write(`${done} (agent pid ${answer.run.pid}, state directory ${dir})\n`);
    return exitCodes.OK;
  }
  throw new UploadError(
    'STATE_DIR',
    `No running agent on ${stateDir} (${why}): ${command} needs the agent to run ` +
      `(its control socket is ${path.join(stateDir, CONTROL_SOCKET)})`,
  );
}

async function readView(kind: 'watch' | 'upload', stateDir: string): Promise<AgentView | undefined> {
  const answer = await askAgent(stateDir, 'status').catch(() => undefined);
  if (answer?.ok) return liveView(kind, stateDir, answer.status, answer.run);
  if (!existsSync(path.join(stateDir, JOURNAL_FILE))) return undefined;
  let running: boolean;
  try {
    StateLock.acquire(stateDir).release();
    running = false;
  } catch (error) {
    if (!isUploadError(error, 'STATE_DIR_LOCKED')) throw error;
    running = true;
  }
  const journal = Journal.open(stateDir, { readonly: true });
  try {
    const rows = journal.loadUploads(RECENT);
    const uploads = rows.map((row) => snapshotOfRow(row, journal));
    return {
      kind,
      stateDir,
      running,
      run: readRunRecord(stateDir),
      uploads: currentOnly(uploads),
      online: undefined,
      paused: undefined,
      lowDisk: undefined,
    };
  } finally {
    journal.close();
  }
}

function liveView(kind: 'watch' | 'upload', stateDir: string, status: AgentStatus, run: RunInfo): AgentView {
  return {
    kind,
    stateDir,
    running: true,
    run,
    uploads: currentOnly(status.uploads),
    online: status.online,
    paused: status.paused,
    lowDisk: status.lowDisk,
  };
}

/** A failure of a file that was verified later is history, not a current failure. */
function currentOnly(uploads: UploadSnapshot[]): UploadSnapshot[] {
  const verifiedAt = new Map<string, string>();
  for (const upload of uploads)
    if (upload.state === 'completed' && upload.finishedAt) verifiedAt.set(upload.localPath, upload.finishedAt);
  return uploads.filter((upload) => {
    if (upload.state !== 'failed') return true;
    const later = verifiedAt.get(upload.localPath);
    return later === undefined || (upload.finishedAt !== undefined && later < upload.finishedAt);
  });
}

/** A journal row as a snapshot: queued rows with the bytes the server acknowledged. */
function snapshotOfRow(row: UploadRow, journal: Journal): UploadSnapshot {
  const acked =
    row.state === 'completed'
      ? row.bytesTotal
      : row.chunkSize
        ? Math.min(row.bytesTotal, journal.ackedChunks(row.id).length * row.chunkSize)
        : 0;
  return {
    id: row.id,
    localPath: row.localPath,
    remotePath: row.remotePath,
    bagName: row.bagName,
    state: row.state,
    priority: row.priority,
    bytesSent: acked,
    bytesTotal: row.bytesTotal,
    rate: 0,
    etaSeconds: undefined,
    attempt: 0,
    lastError: row.lastError,
    sha256: row.sha256,
    metadata: row.metadata,
    queuedAt: row.queuedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    errorCode: row.errorCode,
  };
}

function describe(view: AgentView): string[] {
  const title = view.kind === 'watch' ? 'Daemon (watch)' : 'One-shot upload';
  const run = view.run;
  const since = view.running
    ? `running${run ? ` (pid ${run.pid}, since ${run.startedAt})` : ''}`
    : `not running${run ? ` (last started ${run.startedAt})` : ''}`;
  const lines = [`${title}: ${since}${view.kind === 'upload' ? `, journal in ${view.stateDir}` : ''}`];
  if (run?.watchDir) lines.push(`  Watching: ${run.watchDir}`);
  if (run) {
    lines.push(
      run.server.embedded
        ? '  Server: THE BUNDLED SERVER ON THIS MACHINE (no --server-url given): ' +
            `files are stored in ${run.server.storage}`
        : `  Server: ${run.server.url}`,
    );
  }
  const flags = [
    view.online === false ? 'OFFLINE (the server is unreachable; uploads wait and resume)' : undefined,
    view.paused ? 'PAUSED (ros2-upload-agent resume)' : undefined,
    view.lowDisk ? 'LOW DISK on the recording volume' : undefined,
  ].filter(Boolean);
  if (flags.length > 0) lines.push(`  ${flags.join('; ')}`);
  const by = (states: string[]): UploadSnapshot[] => view.uploads.filter((upload) => states.includes(upload.state));
  const active = by(['uploading', 'retrying', 'stalled']);
  const queued = by(['queued', 'paused']);
  const waiting = by(['waiting_for_close']);
  const failed = by(['failed']);
  const done = by(['completed'])
    .sort((a, b) => (b.finishedAt ?? '').localeCompare(a.finishedAt ?? ''))
    .slice(0, RECENT);
  lines.push(`  Uploading: ${active.length}`);
  for (const upload of active)
    lines.push(
      `    ${progressOf(upload)}` +
        (upload.state === 'uploading' ? '' : `  ${upload.state}${upload.lastError ? `: ${upload.lastError}` : ''}`),
    );
  lines.push(`  Queued: ${queued.length}${view.running ? '' : ' (they go on at the next start)'}`);
  for (const upload of queued)
    lines.push(
      `    ${upload.remotePath}  ` +
        (upload.bytesSent > 0
          ? `${formatSize(upload.bytesSent)} of ${formatSize(upload.bytesTotal)} sent`
          : formatSize(upload.bytesTotal)),
    );
  lines.push(`  Waiting to close or held back: ${waiting.length}`);
  for (const upload of waiting) {
    const reason = upload.metadata?.waitingFor ?? upload.metadata?.reason;
    lines.push(`    ${upload.remotePath}  ${formatSize(upload.bytesTotal)}${reason ? `  (${String(reason)})` : ''}`);
  }
  lines.push(
    `  Failed: ${failed.length}${failed.length > 0 ? ' (ros2-upload-agent retry puts them back in the queue)' : ''}`,
  );
  for (const upload of failed)
    lines.push(`    ${upload.remotePath}  ${upload.errorCode ?? 'error'}: ${upload.lastError ?? ''}`);
  lines.push(`  Recently verified: ${done.length}`);
  for (const upload of done)
    lines.push(`    ${upload.finishedAt ?? ''}  ${formatSize(upload.bytesTotal).padStart(10)}  ${upload.remotePath}`);
  return lines;
}

function progressOf(upload: UploadSnapshot): string {
  const share = upload.bytesTotal > 0 ? Math.floor((upload.bytesSent / upload.bytesTotal) * 100) : 0;
  const rate = upload.rate > 0 ? `  ${formatSize(Math.round(upload.rate))}/s` : '';
  const eta = upload.etaSeconds !== undefined && upload.rate > 0 ? `  ETA ${formatDuration(upload.etaSeconds)}` : '';
  const sent = `${formatSize(upload.bytesSent)} of ${formatSize(upload.bytesTotal)}`;
  return `${upload.remotePath}  ${sent} (${share} %)${rate}${eta}`;
}
