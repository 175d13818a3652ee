import type { AgentStatus } from '../agent-controller.js';
import type { UploadSnapshot } from '../engine/upload-events.js';
import { isUploadErrorCode, type UploadErrorCode } from '../../common/errors/upload-error.js';
import { formatSize } from '../../common/config/units.js';
import type { DiagnosticArrayMessage, KeyValueMessage } from './ros-messages.js';
import type { RosTime } from './ros-seam.js';
import { countByState } from './status-messages.js';
import { uploadStates } from './upload-status-state.js';

/** diagnostic_msgs/msg/DiagnosticStatus levels (a byte; published as a number). */
export const DiagnosticLevel = { OK: 0, WARN: 1, ERROR: 2, STALE: 3 } as const;
export type DiagnosticLevelCode = (typeof DiagnosticLevel)[keyof typeof DiagnosticLevel];

/**
 * The one mapping from error codes to diagnostic levels, for the error an upload last met.
 * ERROR: an operator has to act (credentials, server full or misconfigured, a local file that
 * cannot be read); the agent keeps trying, but it will not fix itself. OK: not a problem
 * (a transient file cancelled, the agent stopping). Every other code, including codes added
 * later, is WARN: the agent retries it and it usually passes.
 */
export const errorCodeLevel: { readonly [K in UploadErrorCode]?: DiagnosticLevelCode } = {
  CONFIG_INVALID: DiagnosticLevel.ERROR,
  CONFIG_UNKNOWN_OPTION: DiagnosticLevel.ERROR,
  CONFIG_FILE_UNREADABLE: DiagnosticLevel.ERROR,
  USAGE: DiagnosticLevel.ERROR,
  BAD_REQUEST: DiagnosticLevel.ERROR,
  INVALID_FIELD: DiagnosticLevel.ERROR,
  INVALID_PATH: DiagnosticLevel.ERROR,
  UNSUPPORTED_MEDIA_TYPE: DiagnosticLevel.ERROR,
  CHUNK_INDEX_OUT_OF_RANGE: DiagnosticLevel.ERROR,
  CHUNK_SIZE_MISMATCH: DiagnosticLevel.ERROR,
  CHUNK_CONFLICT: DiagnosticLevel.ERROR,
  FILE_EXISTS: DiagnosticLevel.ERROR,
  FILE_TOO_LARGE: DiagnosticLevel.ERROR,
  BODY_TOO_LARGE: DiagnosticLevel.ERROR,
  ROUTE_NOT_FOUND: DiagnosticLevel.ERROR,
  UNAUTHORIZED: DiagnosticLevel.ERROR,
  INSUFFICIENT_STORAGE: DiagnosticLevel.ERROR,
  TLS_CONFIG: DiagnosticLevel.ERROR,
  INTERNAL: DiagnosticLevel.ERROR,
  PROTOCOL: DiagnosticLevel.ERROR,
  FILE_UNREADABLE: DiagnosticLevel.ERROR,
  STATE_DIR: DiagnosticLevel.ERROR,
  STATE_DIR_LOCKED: DiagnosticLevel.ERROR,
  ROS_UNAVAILABLE: DiagnosticLevel.ERROR,
  CANCELLED: DiagnosticLevel.OK,
  STOPPED: DiagnosticLevel.OK,
};

export function levelOfErrorCode(code: UploadErrorCode): DiagnosticLevelCode {
  return errorCodeLevel[code] ?? DiagnosticLevel.WARN;
}

/** The error code an upload's last error starts with (`UNAUTHORIZED: ...`, `[NETWORK] ...`), if any. */
export function errorCodeOf(lastError: string | undefined): UploadErrorCode | undefined {
  const match = lastError ? /^\s*\[?([A-Z][A-Z0-9_]*)\]?(?=[:\s]|$)/.exec(lastError) : null;
  const code = match?.[1];
  return isUploadErrorCode(code) ? code : undefined;
}

/** At most this many failed and this many retrying files are listed by name in the details. */
export const MAX_LISTED_FILES = 10;

export interface AgentAssessment {
  level: DiagnosticLevelCode;
  message: string;
  values: KeyValueMessage[];
}

/**
 * OK; WARN when offline, retrying (or stalled) or low on disk; ERROR when files have failed, or
 * when a retrying file's error needs an operator (see errorCodeLevel). With key/value details.
 */
export function assessAgent(status: AgentStatus): AgentAssessment {
  const counts = countByState(status.uploads);
  const problems: { level: DiagnosticLevelCode; text: string }[] = [];
  const failed = status.uploads.filter((upload) => upload.state === 'failed');
  const retrying = status.uploads.filter((upload) => upload.state === 'retrying' || upload.state === 'stalled');

  if (failed.length > 0) problems.push({ level: DiagnosticLevel.ERROR, text: `${failed.length} failed (call ~/retry_failed after fixing the cause)` });
  for (const [code, uploads] of groupByErrorCode(retrying)) {
    const level = Math.max(DiagnosticLevel.WARN, levelOfErrorCode(code)) as DiagnosticLevelCode;
    if (level > DiagnosticLevel.WARN) problems.push({ level, text: `${uploads.length} retrying on ${code}` });
  }
  if (retrying.length > 0) problems.push({ level: DiagnosticLevel.WARN, text: `${retrying.length} retrying` });
  if (!status.online) problems.push({ level: DiagnosticLevel.WARN, text: 'offline: the server is not reachable' });
  if (status.lowDisk) {
    const free = status.freeDiskBytes === undefined ? 'unknown' : formatSize(status.freeDiskBytes);
    problems.push({ level: DiagnosticLevel.WARN, text: `low disk: ${free} free on the recording volume` });
  }

  const level = problems.reduce<DiagnosticLevelCode>((worst, problem) => (problem.level > worst ? problem.level : worst), DiagnosticLevel.OK);
  problems.sort((a, b) => b.level - a.level);
  const activity = counts.uploading > 0 || counts.queued > 0 ? `${counts.uploading} uploading, ${counts.queued} queued` : 'idle';
  const message = [...problems.map((problem) => problem.text), ...(status.paused ? ['paused'] : []), activity].join('; ');

  const values: KeyValueMessage[] = [
    { key: 'online', value: String(status.online) },
    { key: 'paused', value: String(status.paused) },
    { key: 'bandwidth_limit', value: status.bandwidthLimit > 0 ? `${status.bandwidthLimit} B/s (${formatSize(status.bandwidthLimit)}/s)` : 'unlimited' },
    { key: 'bytes_pending', value: String(status.bytesPending) },
    { key: 'free_disk_bytes', value: status.freeDiskBytes === undefined ? 'unknown' : String(status.freeDiskBytes) },
    { key: 'low_disk', value: String(status.lowDisk) },
    ...uploadStates.map((state) => ({ key: `${state}_count`, value: String(counts[state]) })),
    ...listed('failed', failed),
    ...listed('retrying', retrying),
  ];
  return { level, message, values };
}

/** diagnostic_msgs/msg/DiagnosticArray with one status for the agent. */
export function diagnosticsMessage(status: AgentStatus, stamp: RosTime, identity: { name: string; hardwareId: string }): DiagnosticArrayMessage {
  const { level, message, values } = assessAgent(status);
  return {
    header: { stamp, frame_id: '' },
    status: [{ level, name: identity.name, message, hardware_id: identity.hardwareId, values }],
  };
}

function groupByErrorCode(uploads: UploadSnapshot[]): Map<UploadErrorCode, UploadSnapshot[]> {
  const groups = new Map<UploadErrorCode, UploadSnapshot[]>();
  for (const upload of uploads) {
    const code = errorCodeOf(upload.lastError);
    if (code) groups.set(code, [...(groups.get(code) ?? []), upload]);
  }
  return groups;
}

function listed(label: string, uploads: UploadSnapshot[]): KeyValueMessage[] {
  return uploads.slice(0, MAX_LISTED_FILES).map((upload) => ({
    key: `${label}: ${upload.remotePath || upload.localPath}`,
    value: upload.lastError ?? '',
  }));
}
