import type { AgentStatus } from '../app/agent-controller.js';
import type { UploadSnapshot } from '../engine/upload-events.js';
import type { UploadErrorCode } from '../../common/errors/upload-error.js';
import { formatSize } from '../../common/config/units.js';
import type { DiagnosticArrayMessage, KeyValueMessage } from './ros-messages.js';
import type { RosTime } from './ros-seam.js';
import { DiagnosticLevel, errorCodeOf, levelOfErrorCode, type DiagnosticLevelCode } from './diagnostic-levels.js';
import { countByState } from './status-messages.js';
import { uploadStates } from './upload-status-state.js';

/** At most this many failed and this many retrying files are listed by name in the details. */
export const MAX_LISTED_FILES = 10;

export interface AgentAssessment {
  level: DiagnosticLevelCode;
  message: string;
  values: KeyValueMessage[];
}

/**
 * OK; WARN when offline, retrying (or stalled), holding files back or low on disk; ERROR when
 * files have failed, when something stops every upload (a full state disk, a refused server
 * certificate), or when a retrying file's error needs an operator (see errorCodeLevel). With
 * key/value details.
 */
export function assessAgent(status: AgentStatus): AgentAssessment {
  const counts = countByState(status.uploads);
  const problems: { level: DiagnosticLevelCode; text: string }[] = [];
  const failed = status.uploads.filter((upload) => upload.state === 'failed');
  const retrying = status.uploads.filter((upload) => upload.state === 'retrying' || upload.state === 'stalled');

  // What stops every upload (state disk full, certificate refused) names itself and its fix.
  for (const problem of status.problems) problems.push({ level: DiagnosticLevel.ERROR, text: problem.message });
  if (failed.length > 0)
    problems.push({
      level: DiagnosticLevel.ERROR,
      text: `${failed.length} failed (call ~/retry_failed after fixing the cause)`,
    });
  for (const [code, uploads] of groupByErrorCode(retrying)) {
    const level = Math.max(DiagnosticLevel.WARN, levelOfErrorCode(code)) as DiagnosticLevelCode;
    if (level > DiagnosticLevel.WARN) problems.push({ level, text: `${uploads.length} retrying on ${code}` });
  }
  if (retrying.length > 0) problems.push({ level: DiagnosticLevel.WARN, text: `${retrying.length} retrying` });
  if (!status.online) problems.push({ level: DiagnosticLevel.WARN, text: 'offline: the server is not reachable' });
  const [firstHeld] = status.heldBack;
  if (firstHeld)
    problems.push({
      level: DiagnosticLevel.WARN,
      text: `${status.heldBack.length} held back (${firstHeld.remotePath || firstHeld.path}: ${firstHeld.code})`,
    });
  if (status.lowDisk) {
    const free = status.freeDiskBytes === undefined ? 'unknown' : formatSize(status.freeDiskBytes);
    problems.push({ level: DiagnosticLevel.WARN, text: `low disk: ${free} free on the recording volume` });
  }

  const level = problems.reduce<DiagnosticLevelCode>(
    (worst, problem) => Math.max(worst, problem.level) as DiagnosticLevelCode,
    DiagnosticLevel.OK,
  );
  problems.sort((a, b) => b.level - a.level);
  const activity =
    counts.uploading > 0 || counts.queued > 0 ? `${counts.uploading} uploading, ${counts.queued} queued` : 'idle';
  const message = [...problems.map((problem) => problem.text), ...(status.paused ? ['paused'] : []), activity].join(
    '; ',
  );

  const values: KeyValueMessage[] = [
    { key: 'online', value: String(status.online) },
    { key: 'paused', value: String(status.paused) },
    {
      key: 'bandwidth_limit',
      value:
        status.bandwidthLimit > 0
          ? `${status.bandwidthLimit} B/s (${formatSize(status.bandwidthLimit)}/s)`
          : 'unlimited',
    },
    { key: 'bytes_pending', value: String(status.bytesPending) },
    { key: 'free_disk_bytes', value: status.freeDiskBytes === undefined ? 'unknown' : String(status.freeDiskBytes) },
    { key: 'low_disk', value: String(status.lowDisk) },
    ...status.problems.map((problem) => ({ key: `problem: ${problem.code}`, value: problem.message })),
    ...uploadStates.map((state) => ({ key: `${state}_count`, value: String(counts[state]) })),
    ...listed('failed', failed),
    ...listed('retrying', retrying),
    ...status.heldBack.slice(0, MAX_LISTED_FILES).map((held) => ({
      key: `held back: ${held.remotePath || held.path}`,
      value: held.reason,
    })),
  ];
  return { level, message, values };
}

/** diagnostic_msgs/msg/DiagnosticArray with one status for the agent. */
export function diagnosticsMessage(
  status: AgentStatus,
  stamp: RosTime,
  identity: { name: string; hardwareId: string },
): DiagnosticArrayMessage {
  const { level, message, values } = assessAgent(status);
  return {
    header: { stamp, frame_id: '' },
    status: [{ level, name: identity.name, message, hardware_id: identity.hardwareId, values }],
  };
}

function groupByErrorCode(uploads: UploadSnapshot[]): Map<UploadErrorCode, UploadSnapshot[]> {
  const groups = new Map<UploadErrorCode, UploadSnapshot[]>();
  for (const upload of uploads) {
    const code = errorCodeOf(upload);
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
