import type { UploadSnapshot } from '../engine/upload-events.js';
import type { AgentStatus } from './agent-controller.js';

/** Seconds from a split's closing on the robot (its mtime) to its verification on the server, or undefined. */
export function recordingToVerifiedSeconds(upload: UploadSnapshot): number | undefined {
  if (!upload.closedAt || !upload.finishedAt) return undefined;
  const seconds = (Date.parse(upload.finishedAt) - Date.parse(upload.closedAt)) / 1000;
  return Number.isFinite(seconds) ? Math.max(0, seconds) : undefined;
}

/** Age in seconds of the oldest file waiting to be uploaded (closed, not yet verified); 0 when none. */
export function oldestPendingSeconds(status: Pick<AgentStatus, 'uploads'>, now = Date.now()): number {
  let oldest = now;
  for (const upload of status.uploads) {
    if (upload.state === 'completed' || upload.state === 'failed' || upload.state === 'waiting_for_close') continue;
    const since = Date.parse(upload.closedAt ?? upload.queuedAt);
    if (Number.isFinite(since)) oldest = Math.min(oldest, since);
  }
  return Math.max(0, (now - oldest) / 1000);
}

/** The closed → verified seconds of the most recently verified split the status lists, or undefined. */
export function lastRecordingToVerifiedSeconds(status: AgentStatus): number | undefined {
  let last: UploadSnapshot | undefined;
  for (const upload of status.uploads) {
    if (upload.state !== 'completed' || !upload.finishedAt || !upload.closedAt) continue;
    if (!last?.finishedAt || upload.finishedAt > last.finishedAt) last = upload;
  }
  return last ? recordingToVerifiedSeconds(last) : undefined;
}
