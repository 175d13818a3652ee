import type { UploadState } from '../engine/upload-events.js';

/**
 * The one mapping from the engine's upload states to the `state` constants of
 * `upload_agent_msgs/msg/UploadStatus` (msgs/upload_agent_msgs/msg/UploadStatus.msg). The
 * constant's name is the state in upper case; test/ros/interface-files.test.ts checks both
 * against the .msg file.
 */
export const uploadStatusState = {
  queued: 0,
  waiting_for_close: 1,
  uploading: 2,
  retrying: 3,
  stalled: 4,
  paused: 5,
  completed: 6,
  failed: 7,
} as const satisfies Record<UploadState, number>;

/** Every state, in the order of its constant. */
export const uploadStates = Object.keys(uploadStatusState) as UploadState[];

/** States of uploads that are still to do (shown in UploadQueue.uploads), active ones first. */
export const pendingStatesInOrder: readonly UploadState[] = [
  'uploading',
  'retrying',
  'stalled',
  'paused',
  'queued',
  'waiting_for_close',
];

export function isTerminalState(state: UploadState): boolean {
  return state === 'completed' || state === 'failed';
}
