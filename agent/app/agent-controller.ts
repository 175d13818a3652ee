import type { UploadErrorCode } from '../../common/errors/upload-error.js';
import type { UploadSnapshot } from '../engine/upload-events.js';
import type { HeldBackFile } from '../watcher/tracked-file.js';

export type { HeldBackFile };

/**
 * Something that stops every upload until it is fixed, whatever the file: the state disk is full
 * (STATE_DISK_FULL), the server's TLS certificate is refused (TLS_CERTIFICATE). Files are kept,
 * not failed; uploads go on by themselves once it is gone. The ROS node reports it as ERROR.
 */
export interface AgentProblem {
  code: UploadErrorCode;
  /** What is wrong and how to fix it. */
  message: string;
  /** ISO 8601: since when. */
  since: string;
}

/**
 * What the ROS node (agent/ros/) and the CLI need from a running agent: the watcher, the
 * upload engine and the disk guard behind one small interface, so the ROS layer can be
 * driven by a fake in tests and by the real UploadAgent on a robot.
 */
export interface AgentStatus {
  online: boolean;
  paused: boolean;
  /** Bytes/s in force; 0 = unlimited. */
  bandwidthLimit: number;
  /** Every upload the agent knows that is not finished, plus recently finished ones. */
  uploads: UploadSnapshot[];
  /** Bytes not yet acknowledged by the server, over all pending uploads. */
  bytesPending: number;
  /** Free bytes on the recording volume, or undefined when unknown. */
  freeDiskBytes: number | undefined;
  /** True when free disk is below minFreeSpace. */
  lowDisk: boolean;
  /**
   * Files the agent holds back for a reason that needs someone's attention, oldest first: an
   * `.mcap` never closed (a recorder crash), a symbolic link, a special file, a name the server
   * cannot store. Each is also in `uploads` as `waiting_for_close` with the reason as `lastError`
   * (so `~/queue` lists it), and was logged once at warn.
   */
  heldBack: HeldBackFile[];
  /** What stops every upload now (empty when nothing does). */
  problems: AgentProblem[];
}

export interface EnqueueResult {
  accepted: boolean;
  message: string;
  uploadIds: string[];
}

export interface AgentController {
  status(): AgentStatus;
  /** Stop starting new chunks; chunks in flight finish. */
  pause(): void;
  resume(): void;
  /** Queue a file or a bag folder. */
  enqueue(path: string, options?: { priority?: number; metadata?: Record<string, unknown> }): Promise<EnqueueResult>;
  /** Put every failed upload back in the queue; returns how many. */
  retryFailed(): number;
  /**
   * Change a setting at run time (camelCase key, validated by the shared schema). Throws an
   * UploadError with a clear message when the value is refused; the old value stays.
   */
  setOption(key: string, value: unknown): void;
  /** The recorder says this file is closed (rosbag2 /events/write_split); a fast path. */
  markClosed(filePath: string): void;
  /** Called on every status change (state changes, progress at most a few times a second). */
  onChange(listener: (upload: UploadSnapshot | undefined) => void): () => void;
  /** Drain and stop within the stop timeout. */
  stop(): Promise<void>;
}
