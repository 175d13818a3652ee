import type { RosTime } from './ros-seam.js';

/**
 * The messages the node publishes and the requests it serves, as rclnodejs takes them (plain
 * objects; `int64`/`uint64` fields as BigInt). The field names and types must match the
 * interface files: test/ros/interface-files.test.ts parses msgs/ (and the upstream definitions
 * in test/ros/fixtures/) and checks every message the node builds against them.
 */

/** upload_agent_msgs/msg/UploadStatus */
export interface UploadStatusMessage {
  stamp: RosTime;
  upload_id: string;
  local_path: string;
  remote_path: string;
  bag_name: string;
  state: number;
  bytes_sent: bigint;
  bytes_total: bigint;
  rate: number;
  eta: number;
  attempt: number;
  last_error: string;
  error_code: string;
  sha256: string;
  priority: number;
}

/** upload_agent_msgs/msg/UploadQueue */
export interface UploadQueueMessage {
  stamp: RosTime;
  online: boolean;
  paused: boolean;
  bandwidth_limit: bigint;
  queued_count: number;
  waiting_for_close_count: number;
  uploading_count: number;
  retrying_count: number;
  stalled_count: number;
  paused_count: number;
  completed_count: number;
  failed_count: number;
  bytes_pending: bigint;
  free_disk_bytes: bigint;
  low_disk: boolean;
  uploads: UploadStatusMessage[];
}

/** upload_agent_msgs/srv/Enqueue */
export interface EnqueueRequest {
  path: string;
  priority: number;
  metadata_json: string;
}

export interface EnqueueResponse {
  accepted: boolean;
  message: string;
  upload_ids: string[];
}

/** std_srvs/srv/Trigger (the request is empty). */
export interface TriggerResponse {
  success: boolean;
  message: string;
}

/** std_msgs/msg/String */
export interface StringMessage {
  data: string;
}

/** diagnostic_msgs/msg/KeyValue */
export interface KeyValueMessage {
  key: string;
  value: string;
}

/** diagnostic_msgs/msg/DiagnosticStatus; `level` is a byte, given as a number 0 to 3. */
export interface DiagnosticStatusMessage {
  level: number;
  name: string;
  message: string;
  hardware_id: string;
  values: KeyValueMessage[];
}

/** diagnostic_msgs/msg/DiagnosticArray */
export interface DiagnosticArrayMessage {
  header: { stamp: RosTime; frame_id: string };
  status: DiagnosticStatusMessage[];
}

/** rosbag2_interfaces/msg/WriteSplitEvent (Humble ≥ 0.15.3; `node_name` from Jazzy on). */
export interface WriteSplitEventMessage {
  closed_file: string;
  opened_file: string;
  node_name?: string;
}
