import type { UploadRow } from './journal/journal.js';
import type { UploadSnapshot, UploadState } from './upload-events.js';
import type { FileVersion } from './source/local-file.js';

/** What the engine is doing with an upload; `paused` is derived (see snapshotOf). */
export type UploadPhase = Exclude<UploadState, 'paused' | 'waiting_for_close'>;

/** The server session an upload is using, and the file version it was made for. */
export interface SessionRef {
  id: string;
  /** The server it lives on (serverUrl's base), so a changed serverUrl starts afresh. */
  server: string;
  chunkSize: number;
  version: FileVersion;
}

/** The engine's mutable state of one upload. Owned by the manager, advanced by its runner. */
export interface UploadRecord {
  readonly id: string;
  readonly seq: number;
  readonly localPath: string;
  readonly remotePath: string;
  readonly bagName: string;
  priority: number;
  readonly metadata: Record<string, unknown> | undefined;
  replace: boolean;
  phase: UploadPhase;
  holdsSlot: boolean;
  bytesTotal: number;
  /** Bytes of chunks the server acknowledged (or holds). */
  bytesAcked: number;
  /** Bytes of the chunk in flight handed to the connection so far (decoded units). */
  bytesInFlight: number;
  attempt: number;
  lastError: string | undefined;
  errorCode: string | undefined;
  sha256: string | undefined;
  deduplicated: boolean;
  session: SessionRef | undefined;
  queuedAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  readonly meter: RateMeter;
  /** Last state reported in a `state` event. */
  reportedState: UploadState | undefined;
  lastProgressAt: number;
}

export function isTerminal(record: UploadRecord): boolean {
  return record.phase === 'completed' || record.phase === 'failed';
}

/** The snapshot of a record. While the engine is paused, everything not sending a chunk shows `paused`. */
export function snapshotOf(record: UploadRecord, enginePaused: boolean, now = performance.now()): UploadSnapshot {
  const bytesSent = Math.min(record.bytesTotal, record.bytesAcked + record.bytesInFlight);
  const sending = record.phase === 'uploading' || record.phase === 'stalled';
  const state: UploadState =
    !isTerminal(record) && enginePaused && !(sending && record.holdsSlot) ? 'paused' : record.phase;
  const rate = isTerminal(record) ? 0 : record.meter.rate(now);
  const remaining = record.bytesTotal - bytesSent;
  return {
    id: record.id,
    localPath: record.localPath,
    remotePath: record.remotePath,
    bagName: record.bagName,
    state,
    priority: record.priority,
    bytesSent: record.phase === 'completed' ? record.bytesTotal : bytesSent,
    bytesTotal: record.bytesTotal,
    rate,
    etaSeconds: record.phase === 'completed' ? 0 : rate > 0 ? remaining / rate : undefined,
    attempt: record.attempt,
    lastError: record.lastError,
    sha256: record.sha256,
    metadata: record.metadata,
    queuedAt: record.queuedAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    errorCode: record.errorCode,
    deduplicated: record.phase === 'completed' ? record.deduplicated : undefined,
  };
}

/** Send rate over a sliding window of a few seconds. */
export class RateMeter {
  readonly #windowMs: number;
  #samples: { at: number; bytes: number }[] = [];

  constructor(windowMs = 3000) {
    this.#windowMs = windowMs;
  }

  add(bytes: number, now = performance.now()): void {
    this.#samples.push({ at: now, bytes });
    this.#trim(now);
  }

  /** Bytes/s over the window; 0 when nothing moved in it. */
  rate(now = performance.now()): number {
    this.#trim(now);
    const oldest = this.#samples[0];
    if (oldest === undefined) return 0;
    const total = this.#samples.reduce((sum, sample) => sum + sample.bytes, 0);
    const span = Math.max(now - oldest.at, 250);
    return (total / span) * 1000;
  }

  reset(): void {
    this.#samples = [];
  }

  #trim(now: number): void {
    let drop = 0;
    for (const sample of this.#samples) {
      if (now - sample.at <= this.#windowMs) break;
      drop += 1;
    }
    if (drop > 0) this.#samples.splice(0, drop);
    if (this.#samples.length > 4096) this.#samples.splice(0, this.#samples.length - 4096);
  }
}

/** A new upload's record, queued. */
export function newRecord(
  fields: Pick<
    UploadRecord,
    | 'id'
    | 'seq'
    | 'localPath'
    | 'remotePath'
    | 'bagName'
    | 'priority'
    | 'metadata'
    | 'replace'
    | 'bytesTotal'
    | 'queuedAt'
  >,
): UploadRecord {
  return {
    ...fields,
    phase: 'queued',
    holdsSlot: false,
    bytesAcked: 0,
    bytesInFlight: 0,
    attempt: 0,
    lastError: undefined,
    errorCode: undefined,
    sha256: undefined,
    deduplicated: false,
    session: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    meter: new RateMeter(),
    reportedState: undefined,
    lastProgressAt: 0,
  };
}

/** The journal row of a newly queued upload. */
export function rowOf(record: UploadRecord): UploadRow {
  return {
    id: record.id,
    seq: record.seq,
    localPath: record.localPath,
    remotePath: record.remotePath,
    bagName: record.bagName,
    priority: record.priority,
    metadata: record.metadata,
    replace: record.replace,
    state: 'queued',
    bytesTotal: record.bytesTotal,
    size: undefined,
    mtimeMs: undefined,
    sessionId: undefined,
    sessionServer: undefined,
    chunkSize: undefined,
    sha256: undefined,
    errorCode: undefined,
    lastError: undefined,
    queuedAt: record.queuedAt,
    startedAt: undefined,
    finishedAt: undefined,
  };
}
