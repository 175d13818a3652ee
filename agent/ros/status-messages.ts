import type { AgentStatus } from '../app/agent-controller.js';
import type { UploadSnapshot, UploadState } from '../engine/upload-events.js';
import type { UploadQueueMessage, UploadStatusMessage } from './ros-messages.js';
import type { RosTime } from './ros-seam.js';
import { errorCodeOf } from './diagnostic-levels.js';
import { pendingStatesInOrder, uploadStates, uploadStatusState } from './upload-status-state.js';

/** At most this many entries in UploadQueue.uploads (the counts cover the rest). */
export const MAX_QUEUE_ENTRIES = 100;

const UINT32_MAX = 2 ** 32 - 1;

/** upload_agent_msgs/msg/UploadStatus for one upload. */
export function uploadStatusMessage(upload: UploadSnapshot, stamp: RosTime): UploadStatusMessage {
  return {
    stamp,
    upload_id: upload.id,
    local_path: upload.localPath,
    remote_path: upload.remotePath,
    bag_name: upload.bagName,
    state: uploadStatusState[upload.state],
    bytes_sent: uint64(upload.bytesSent),
    bytes_total: uint64(upload.bytesTotal),
    rate: finiteOr(upload.rate, 0),
    eta: upload.etaSeconds === undefined || !Number.isFinite(upload.etaSeconds) ? -1 : Math.max(0, upload.etaSeconds),
    attempt: clampInteger(upload.attempt, 0, UINT32_MAX),
    last_error: upload.lastError ?? '',
    error_code: errorCodeOf(upload) ?? '',
    sha256: upload.sha256 ?? '',
    priority: clampInteger(upload.priority, 0, 255),
  };
}

/** Uploads per state. */
export function countByState(uploads: readonly UploadSnapshot[]): Record<UploadState, number> {
  const counts = Object.fromEntries(uploadStates.map((state) => [state, 0])) as Record<UploadState, number>;
  for (const upload of uploads) counts[upload.state] += 1;
  return counts;
}

/** The uploads still to do, active first, then by priority (1 first), then oldest first. */
export function pendingUploads(uploads: readonly UploadSnapshot[], limit = MAX_QUEUE_ENTRIES): UploadSnapshot[] {
  const rank = (upload: UploadSnapshot): number => pendingStatesInOrder.indexOf(upload.state);
  return uploads
    .filter((upload) => rank(upload) >= 0)
    .sort((a, b) => rank(a) - rank(b) || a.priority - b.priority || a.queuedAt.localeCompare(b.queuedAt))
    .slice(0, limit);
}

/** upload_agent_msgs/msg/UploadQueue for the whole agent. */
export function uploadQueueMessage(status: AgentStatus, stamp: RosTime): UploadQueueMessage {
  const counts = countByState(status.uploads);
  return {
    stamp,
    online: status.online,
    paused: status.paused,
    bandwidth_limit: uint64(status.bandwidthLimit),
    queued_count: counts.queued,
    waiting_for_close_count: counts.waiting_for_close,
    uploading_count: counts.uploading,
    retrying_count: counts.retrying,
    stalled_count: counts.stalled,
    paused_count: counts.paused,
    completed_count: counts.completed,
    failed_count: counts.failed,
    bytes_pending: uint64(status.bytesPending),
    free_disk_bytes:
      status.freeDiskBytes === undefined || !Number.isFinite(status.freeDiskBytes)
        ? -1n
        : BigInt(Math.max(0, Math.floor(status.freeDiskBytes))),
    low_disk: status.lowDisk,
    uploads: pendingUploads(status.uploads).map((upload) => uploadStatusMessage(upload, stamp)),
  };
}

const stateNames = new Map<number, string>(Object.entries(uploadStatusState).map(([name, code]) => [code, name]));

/**
 * The std_msgs/msg/String fallback (when upload_agent_msgs is missing): the same message as
 * JSON, with BigInt as numbers and each `state` also spelled out as `state_name`.
 */
export function messageJson(message: UploadStatusMessage | UploadQueueMessage): string {
  return JSON.stringify(message, (_key, value: unknown) => {
    if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    if (
      value !== null &&
      typeof value === 'object' &&
      'state' in value &&
      typeof (value as { state: unknown }).state === 'number'
    ) {
      const withState = value as { state: number };
      return { ...withState, state_name: stateNames.get(withState.state) ?? 'unknown' };
    }
    return value;
  });
}

/** A byte count as an uint64 field: BigInt, never negative. */
export function uint64(value: number): bigint {
  return Number.isFinite(value) && value > 0 ? BigInt(Math.round(value)) : 0n;
}

function finiteOr(value: number, fallback: number): number {
  return Number.isFinite(value) ? value : fallback;
}

function clampInteger(value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.round(value))) : min;
}
