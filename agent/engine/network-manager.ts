import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { statfsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { formatDuration, formatSize, roundSeconds } from '../../common/config/units.js';
import { isUploadError, UploadError } from '../../common/errors/upload-error.js';
import { createLogger } from '../../common/program/create-logger.js';
import { DEFAULT_SERVER_HOST, DEFAULT_SERVER_PORT } from '../../common/protocol/native-protocol.js';
import { ReachabilityProbe } from './connectivity/reachability-probe.js';
import { engineOptionSpecs, engineOptions, type EngineConfig } from './engine-options.js';
import { Journal, type CompletedFileRow } from './journal/journal.js';
import { StateLock } from './journal/state-lock.js';
import { UploadQueue, type Slot } from './queue/upload-queue.js';
import type { RetryInfo } from './retry/retry-request.js';
import { sleep } from './retry/retry-request.js';
import { describeFailure } from './retry/classify-failure.js';
import { TokenBucket } from './throttle/token-bucket.js';
import { HttpTransport } from './transport/http-transport.js';
import { ApiSelector } from './transport/api-selector.js';
import { SessionClient } from './transport/session-client.js';
import { readTokenFile } from './transport/token-file.js';
import { SettleWaiters } from './settle-waiters.js';
import type { EngineProblem, NetworkManagerEvents, UploadSnapshot } from './upload-events.js';
import { isTerminal, newRecord, rowOf, snapshotOf, type UploadRecord } from './upload-record.js';
import {
  bagNameOf,
  checkUpload,
  type AddUploadOptions,
  type AddUploadResult,
  type CheckedUpload,
} from './upload-request.js';
import { UploadRunner, wholeFileLimit, type RunnerContext } from './upload-runner.js';

export type { AddUploadOptions, AddUploadResult };

/** Options of `new NetworkManager(...)`: the engine settings (validated by `engineOptions`) plus a logger. */
export type NetworkManagerOptions = { [K in keyof EngineConfig]?: EngineConfig[K] | string } & {
  /** The same as serverUrl, under the Python NetworkManager's name (upload_url). */
  uploadUrl?: string;
  /** pino logger; default: warnings and errors as JSON on stderr. */
  logger?: Logger;
};

export interface CancelOptions {
  /** Also delete the server session and its data. Default true. */
  dropServerSession?: boolean;
}

/** Free bytes the state disk needs before uploads resume after it was full (a few journal pages). */
const MIN_FREE_STATE_BYTES = 64 * 1024;
/**
 * How many completed uploads status() keeps (and the journal keeps rows for); failed ones stay
 * until retried or cancelled.
 */
const FINISHED_KEPT = 1000;
/** Progress events per upload at most this often (ms), besides one per acknowledged chunk. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Where a server listens by default (the protocol's defaults, which the server uses too): the URL
 * when serverUrl is unset.
 */
const LOCAL_SERVER_URL = `http://${DEFAULT_SERVER_HOST}:${DEFAULT_SERVER_PORT}`;

/**
 * The upload engine: gets files to the server, byte-identical, over bad links, and picks up
 * where it left off after any crash. The knobs of the Python dashboard's NetworkManager are here
 * in camelCase (`manager.uploadTimeout = 600`, `manager.bandwidthLimit = 1024 * 1024`).
 *
 * Where things happen: queue/ (order and concurrency slots: p-queue, fed from the backlog), source/ (reading the file),
 * hashing/ (SHA-256 while sending), compression/ (gzip on the wire), throttle/ (the shared
 * bandwidth limit), transport/ (undici HTTP(S), streaming a chunk), stall/ (the watchdog that
 * aborts hung requests), retry/ (which failures are retried, backoff), connectivity/ (offline
 * probe), journal/ (SQLite state); upload-runner.ts drives one file.
 */
export class NetworkManager extends EventEmitter<NetworkManagerEvents> {
  readonly #logger: Logger;
  #config: EngineConfig;
  readonly #records = new Map<string, UploadRecord>();
  readonly #runners = new Map<string, UploadRunner>();
  /** Pending uploads by local and remote path: addUpload finds a duplicate without scanning the queue. */
  readonly #pendingByKey = new Map<string, UploadRecord>();
  /** Completed uploads in the order they finished: the oldest are forgotten first. */
  readonly #completedOrder = new Set<UploadRecord>();
  /**
   * The records that failed (a superset: one requeued or forgotten since is dropped when next
   * looked at), so a completion looks through these instead of every record in the queue.
   */
  readonly #failedRecords = new Set<UploadRecord>();
  /** Completed uploads whose completion waits for the journal's fsync before it is announced. */
  readonly #announcing = new Set<UploadRecord>();
  readonly #waiters = new SettleWaiters();
  readonly #bucket: TokenBucket;
  readonly #slots: UploadQueue<UploadRecord>;
  readonly #probe: ReachabilityProbe;
  /** Probes the journal while the state disk is full, with the same backoff. */
  readonly #stateProbe: ReachabilityProbe;
  /** What stops every upload now (state disk full, certificate refused), by code. */
  readonly #problems = new Map<EngineProblem['code'], EngineProblem>();
  readonly #unblockWaiters = new Set<() => void>();
  #journal: Journal | undefined;
  #lock: StateLock | undefined;
  #transport: HttpTransport | undefined;
  /** Which API the server speaks (found once per connection target) and its clients. */
  #api: ApiSelector | undefined;
  /** Servers already warned about as legacy-only (the warning is logged once per server). */
  readonly #legacyWarned = new Set<string>();
  #started = false;
  #paused = false;
  #online = true;
  /** When the engine went offline (performance.now()), for "back online after …". */
  #offlineSince = 0;
  #stopping: Promise<void> | undefined;
  #nextSeq = 1;
  /** #nextSeq accounts for the journal's rows (read once per opening of the journal). */
  #seqFromJournal = false;
  readonly #onlineWaiters = new Set<() => void>();
  readonly #context: RunnerContext;

  constructor(options: NetworkManagerOptions = {}) {
    super();
    const { logger, ...settings } = options;
    this.#config = engineOptions.resolve(
      engineOptions.parse(settings as Record<string, unknown>, 'NetworkManager options'),
    );
    this.#logger =
      logger ?? createLogger({ name: 'ros2-upload-agent', level: 'warn', specs: [engineOptionSpecs], destination: 2 });
    this.#bucket = new TokenBucket(this.#config.bandwidthLimit);
    // Small files share slots, together at most one chunk: the memory a slot may hold stays the same.
    this.#slots = new UploadQueue<UploadRecord>(
      this.#config.maxConcurrentUploads,
      (record, slot) => this.#run(record, slot),
      {
        sizeOf: (record) => record.bytesTotal,
        limits: () => ({
          uploads: this.#config.smallFilesPerSlot,
          bytes: this.#config.chunkSize,
          fileBytes: wholeFileLimit(this.#config.chunkSize),
        }),
      },
    );
    this.#probe = new ReachabilityProbe({
      check: (signal) => this.#checkHealth(signal),
      minDelayMs: () => this.#config.retryDelay * 1000,
      maxDelayMs: () => this.#config.retryMaxDelay * 1000,
      onReachable: () => this.#setOnline(),
      onUnreachable: (next) =>
        this.#logger.info(
          { nextProbeSeconds: Math.round(next) / 1000 },
          this.#problems.has('TLS_CERTIFICATE') ? 'server certificate still refused' : 'server still unreachable',
        ),
    });
    this.#stateProbe = new ReachabilityProbe({
      check: async () => this.#stateWritable(),
      minDelayMs: () => this.#config.retryDelay * 1000,
      maxDelayMs: () => this.#config.retryMaxDelay * 1000,
      onReachable: () => this.#unblock('STATE_DISK_FULL'),
    });
    this.#context = this.#makeContext();
  }

  // ---- settings ---------------------------------------------------------------------------

  /** The settings in force (validated). */
  get options(): Readonly<EngineConfig> {
    return { ...this.#config };
  }

  /**
   * Changes settings on a running manager, validated by the same schema (an invalid value
   * throws an UploadError naming it, and nothing changes). `bandwidthLimit` and
   * `maxConcurrentUploads` apply at once; timeouts and retries from the next request; chunkSize
   * to new sessions; connection settings (serverUrl, token, TLS, initTimeout) by reconnecting.
   */
  setOptions(partial: Partial<Record<keyof EngineConfig | (string & {}), unknown>>): void {
    const parsed = engineOptions.parse(partial, 'setOptions');
    if (parsed.stateDir !== undefined && parsed.stateDir !== this.#config.stateDir && this.#journal) {
      throw new UploadError(
        'CONFIG_INVALID',
        'stateDir cannot change while the manager has its journal open; stop() it first',
        { details: { option: 'stateDir' } },
      );
    }
    const before = this.#config;
    this.#config = { ...before, ...parsed };
    if (parsed.bandwidthLimit !== undefined) this.#bucket.setRate(this.#config.bandwidthLimit);
    if (parsed.maxConcurrentUploads !== undefined) this.#slots.concurrency = this.#config.maxConcurrentUploads;
    const connection = ['serverUrl', 'token', 'tokenFile', 'caFile', 'clientCert', 'clientKey', 'initTimeout'] as const;
    if (this.#transport && connection.some((key) => key in parsed && parsed[key] !== before[key])) {
      const old = this.#transport;
      try {
        this.#openTransport();
      } catch (error) {
        this.#config = before;
        throw error;
      }
      void old.close();
      // A refused certificate may be fixed by the new settings: the next request tells.
      this.#unblock('TLS_CERTIFICATE');
    }
  }

  /** One setting by name (camelCase, kebab-case or snake_case), as the agent's controller needs. */
  setOption(key: string, value: unknown): void {
    this.setOptions({ [key]: value });
  }

  get uploadTimeout(): number {
    return this.#config.uploadTimeout;
  }
  set uploadTimeout(value: number) {
    this.setOptions({ uploadTimeout: value });
  }
  get initTimeout(): number {
    return this.#config.initTimeout;
  }
  set initTimeout(value: number) {
    this.setOptions({ initTimeout: value });
  }
  get stalledTimeout(): number {
    return this.#config.stalledTimeout;
  }
  set stalledTimeout(value: number) {
    this.setOptions({ stalledTimeout: value });
  }
  get maxRetries(): number {
    return this.#config.maxRetries;
  }
  set maxRetries(value: number) {
    this.setOptions({ maxRetries: value });
  }
  get maxConcurrentUploads(): number {
    return this.#config.maxConcurrentUploads;
  }
  set maxConcurrentUploads(value: number) {
    this.setOptions({ maxConcurrentUploads: value });
  }
  /** Bytes/s shared by all uploads; 0 = unlimited. A change applies within a second. */
  get bandwidthLimit(): number {
    return this.#config.bandwidthLimit;
  }
  set bandwidthLimit(value: number) {
    this.setOptions({ bandwidthLimit: value });
  }
  get chunkSize(): number {
    return this.#config.chunkSize;
  }
  set chunkSize(value: number) {
    this.setOptions({ chunkSize: value });
  }

  /** The server base URL in use (serverUrl, or the bundled server's default address). */
  get serverUrl(): string {
    return this.#config.serverUrl ?? LOCAL_SERVER_URL;
  }

  // ---- lifecycle --------------------------------------------------------------------------

  get started(): boolean {
    return this.#started;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** False while the server is unreachable (after a request ran out of retries on network errors). */
  get online(): boolean {
    return this.#online;
  }

  /**
   * What stops every upload now, until it is fixed (state disk full, the server's certificate
   * refused); empty when nothing does. Each started with a `blocked` event and ends with
   * `unblocked`.
   */
  get problems(): EngineProblem[] {
    return [...this.#problems.values()].map((problem) => ({ ...problem }));
  }

  /**
   * Opens the journal (locking the state directory), reloads pending uploads and starts
   * uploading. Pending uploads resume from what the server says it holds.
   */
  async start(): Promise<void> {
    if (this.#stopping) await this.#stopping;
    if (this.#started) return;
    this.#openJournal();
    this.#openTransport();
    this.#loadJournal();
    this.#started = true;
    this.#online = true;
    // A problem met while stopped (or before a restart) is watched again.
    if (this.#problems.has('STATE_DISK_FULL')) this.#stateProbe.start();
    if (this.#problems.has('TLS_CERTIFICATE')) this.#probe.start();
    // Every pending upload asks for its slot first; then slots are granted in priority order.
    for (const record of this.#records.values()) {
      if (!isTerminal(record)) this.#launch(record);
    }
    this.#updateGate();
  }

  /**
   * Stops: no new chunks; chunks in flight get `stopTimeout` to finish, then are aborted. State
   * is persisted and the state directory released; `start()` continues where it stopped. (Any
   * later call that needs the journal, such as addUpload, opens it again until the next stop.)
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (!this.#started) {
      this.#closeJournal();
      return;
    }
    this.#started = false;
    this.#updateGate();
    this.#probe.stop();
    this.#stateProbe.stop();
    const reason = new UploadError('STOPPED', 'the upload manager is stopping');
    const runners = [...this.#runners.values()];
    for (const runner of runners) runner.requestStop(reason);
    const all = Promise.allSettled(runners.map((runner) => runner.settled));
    const deadline = new AbortController();
    await Promise.race([all, sleep(this.#config.stopTimeout * 1000, deadline.signal).catch(() => undefined)]);
    deadline.abort();
    for (const runner of runners) runner.abort(reason);
    await all;
    this.#runners.clear();
    for (const wake of this.#onlineWaiters) wake();
    for (const wake of [...this.#unblockWaiters]) wake();
    for (const record of this.#records.values()) {
      if (isTerminal(record)) continue;
      record.phase = 'queued';
      record.holdsSlot = false;
      record.bytesInFlight = 0;
      record.meter.reset();
      this.#reportState(record);
    }
    await this.#transport?.close();
    this.#transport = undefined;
    this.#api = undefined;
    this.#closeJournal();
  }

  /** No new chunks start; chunks in flight finish. */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#updateGate();
    for (const record of this.#records.values()) this.#reportState(record);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#updateGate();
    for (const record of this.#records.values()) this.#reportState(record);
  }

  // ---- uploads ----------------------------------------------------------------------------

  /**
   * Queues a file; returns the upload's id. The same file to the same remote path while it is
   * still pending returns the pending upload's id. Rejects with an UploadError for a missing
   * file (LOCAL_FILE_NOT_FOUND), a bad remote path (INVALID_PATH) or a bad priority (INVALID_FIELD).
   */
  async addUpload(filePath: string, options: AddUploadOptions = {}): Promise<string> {
    const [result] = await this.addUploads([{ filePath, options }]);
    if (!result || 'error' in result) throw result?.error ?? new UploadError('INTERNAL', `${filePath}: not queued`);
    return result.id;
  }

  /**
   * Queues several files in this order, each as addUpload would, with their journal rows in one
   * durable commit (one fsync for a whole folder instead of one per file). Each entry of the
   * answer is the upload's id, or the UploadError that refused that file (the others are queued).
   * A journal that cannot be written rejects the whole call, and nothing is queued.
   */
  async addUploads(uploads: readonly { filePath: string; options?: AddUploadOptions }[]): Promise<AddUploadResult[]> {
    const checked: (CheckedUpload | { error: UploadError })[] = [];
    for (const { filePath, options = {} } of uploads) {
      try {
        checked.push(await checkUpload(filePath, options));
      } catch (error) {
        checked.push({
          error:
            error instanceof UploadError
              ? error
              : new UploadError('INTERNAL', `${filePath}: ${describeFailure(error)}`, { cause: error }),
        });
      }
    }
    // From here on synchronous: no other call interleaves.
    const results: AddUploadResult[] = [];
    const created: UploadRecord[] = [];
    const journal = this.#openJournal();
    if (!this.#seqFromJournal) {
      this.#nextSeq = Math.max(this.#nextSeq, journal.nextSeq());
      this.#seqFromJournal = true;
    }
    for (const item of checked) {
      if ('error' in item) {
        results.push(item);
        continue;
      }
      const key = pendingKey(item.localPath, item.remotePath);
      const pending = this.#pendingByKey.get(key);
      if (pending && (this.#records.get(pending.id) === pending || created.includes(pending)) && !isTerminal(pending)) {
        if (item.priority < pending.priority) {
          pending.priority = item.priority;
          this.#slots.reprioritize(pending);
          if (!created.includes(pending)) journal.setPriority(pending.id, item.priority);
        }
        results.push({ id: pending.id });
        continue;
      }
      const record = newRecord({
        id: randomUUID(),
        seq: this.#nextSeq++,
        localPath: item.localPath,
        remotePath: item.remotePath,
        bagName: item.options.bagName ?? bagNameOf(item.remotePath),
        priority: item.priority,
        metadata: item.options.metadata,
        replace: item.options.replace ?? false,
        bytesTotal: item.size,
        queuedAt: new Date().toISOString(),
      });
      created.push(record);
      this.#pendingByKey.set(key, record);
      results.push({ id: record.id });
    }
    if (created.length === 0) return results;
    try {
      journal.insertUploads(created.map(rowOf));
    } catch (error) {
      for (const record of created) this.#forgetPending(record);
      this.#waiters.maybeIdle(this.idle);
      throw error;
    }
    // Queued at once, in queue order: the caller gets the ids before any I/O, so before anything
    // (a completion, a failure) can happen to these uploads.
    for (const record of created) {
      this.#records.set(record.id, record);
      this.#emit('queued', this.#snapshot(record));
      this.#reportState(record);
      if (this.#started) this.#launch(record);
    }
    return results;
  }

  /** Puts every failed upload back in the queue; returns how many. */
  retryFailed(): number {
    let count = 0;
    for (const record of this.#records.values()) {
      if (record.phase !== 'failed') continue;
      // Durable first: when the journal cannot be written, nothing changes and the caller is told.
      this.#openJournal().requeue(record.id);
      record.phase = 'queued';
      record.lastError = undefined;
      record.errorCode = undefined;
      record.finishedAt = undefined;
      record.attempt = 0;
      this.#pendingByKey.set(pendingKey(record.localPath, record.remotePath), record);
      this.#reportState(record);
      if (this.#started) this.#launch(record);
      count += 1;
    }
    return count;
  }

  /**
   * Cancels an upload: aborts it, forgets it, and (by default) deletes its server session and
   * data. Returns false for an unknown or already completed upload.
   */
  async cancel(id: string, options: CancelOptions = {}): Promise<boolean> {
    const record = this.#records.get(id);
    if (!record || record.phase === 'completed') return false;
    const runner = this.#runners.get(id);
    if (runner) {
      runner.abort(new UploadError('CANCELLED', `${record.localPath}: upload cancelled`));
      await runner.settled;
      this.#runners.delete(id);
    }
    const session = record.session?.id ?? this.#journalSession(id);
    if ((options.dropServerSession ?? true) && session) {
      try {
        const transport = this.#transport ?? this.#makeTransport();
        // The API this server was found to speak (the legacy API has no cancel: its sessions expire).
        const client = transport === this.#transport && this.#api ? this.#api.chosen : new SessionClient(transport);
        await client.cancel(
          session,
          { timeoutMs: this.#config.initTimeout * 1000, stalledMs: this.#config.stalledTimeout * 1000 },
          `${record.localPath}: cancel`,
        );
        if (transport !== this.#transport) await transport.close();
      } catch (error) {
        this.#logger.info(
          { upload: record.localPath, error: describeFailure(error) },
          'could not delete the server session of a cancelled upload (it expires on its own)',
        );
      }
    }
    try {
      this.#openJournal().deleteUpload(id);
    } catch (error) {
      // Forgotten in memory all the same. Should it come back from the journal after a restart, it
      // is uploaded (or fails for a missing file): never lost, at worst sent once more.
      this.#logger.warn(
        { upload: record.localPath, error: describeFailure(error) },
        'could not remove a cancelled upload from the journal',
      );
    }
    this.#records.delete(id);
    this.#forgetPending(record);
    record.holdsSlot = false;
    this.#emit('cancelled', this.#snapshot(record));
    this.#settled(record);
    return true;
  }

  /** Snapshots of every upload this manager knows: pending, failed, and recently completed. */
  status(): UploadSnapshot[] {
    const now = performance.now();
    return [...this.#records.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((record) => snapshotOf(record, this.#paused, now));
  }

  /** One upload's snapshot. */
  upload(id: string): UploadSnapshot | undefined {
    const record = this.#records.get(id);
    return record ? this.#snapshot(record) : undefined;
  }

  /** Bytes the server has not acknowledged yet, over all pending uploads. */
  get bytesPending(): number {
    let total = 0;
    for (const record of this.#records.values()) {
      if (!isTerminal(record)) total += Math.max(0, record.bytesTotal - record.bytesAcked);
    }
    return total;
  }

  /**
   * The last verified upload of a local file (from the journal), so a caller can tell whether
   * the file as it is now was already uploaded (compare size and mtimeMs).
   */
  completedFile(filePath: string): CompletedFileRow | undefined {
    return this.#openJournal().completedFile(path.resolve(filePath));
  }

  /**
   * True when no upload is pending: every upload this manager knows has completed (and its
   * `completed` event was emitted) or failed. Pending means queued, running, retrying, stalled,
   * paused, waiting for a slot, or waiting for the server to be reachable again (offline): an
   * upload that waits for the network is not settled, it will go on by itself.
   */
  get idle(): boolean {
    // #pendingByKey holds exactly the pending uploads (one per local and remote path).
    return this.#pendingByKey.size === 0 && this.#announcing.size === 0;
  }

  /**
   * Resolves once the manager is idle (see `idle`; at once if it is now), p-queue's `onIdle()`.
   * Failed uploads do not keep it waiting; `retryFailed()` makes them pending again. A stopped
   * manager with pending uploads is not idle: they go on after `start()`.
   */
  onIdle(): Promise<void> {
    return this.#waiters.idle(this.idle);
  }

  /**
   * Resolves once each of these uploads has settled: completed (after its `completed` event),
   * failed, or cancelled, with its final snapshot, in the order given. An id this manager does
   * not know (or no longer: cancelled, or a completed one beyond the history kept) gives
   * undefined.
   */
  whenSettled(ids: readonly string[]): Promise<(UploadSnapshot | undefined)[]> {
    return Promise.all(
      ids.map((id) => {
        const record = this.#records.get(id);
        if (!record) return undefined;
        if (isTerminal(record) && !this.#announcing.has(record)) return this.#snapshot(record);
        return this.#waiters.upload(id);
      }),
    );
  }

  // ---- internals --------------------------------------------------------------------------

  /**
   * Puts an upload in the queue's backlog for its first slot. Its runner is made only once the
   * slot is granted, so a long queue costs a record per file, not a runner with its promises,
   * abort controllers and timers. An upload cancelled, finished or stopped meanwhile gives the
   * slot straight back.
   */
  #launch(record: UploadRecord): void {
    if (this.#runners.has(record.id)) return;
    this.#slots.enqueue(record);
  }

  /** A queued upload got its first slot: its runner starts. */
  #run(record: UploadRecord, slot: Slot): void {
    if (
      !this.#started ||
      this.#records.get(record.id) !== record ||
      isTerminal(record) ||
      this.#runners.has(record.id)
    ) {
      slot.release();
      return;
    }
    const runner = new UploadRunner(record, this.#context, slot);
    this.#runners.set(record.id, runner);
    void runner.start().finally(() => {
      if (this.#runners.get(record.id) === runner) this.#runners.delete(record.id);
    });
  }

  #makeContext(): RunnerContext {
    return {
      logger: this.#logger,
      bucket: this.#bucket,
      slots: this.#slots,
      config: () => this.#config,
      client: () => {
        if (!this.#api) throw new UploadError('STOPPED', 'the upload manager is not running');
        return this.#api.chosen;
      },
      resolveClient: (limits) => {
        if (!this.#api) throw new UploadError('STOPPED', 'the upload manager is not running');
        return this.#api.resolve({ timeoutMs: limits.timeoutMs, stalledMs: limits.stalledMs });
      },
      noNativeApi: (seen) => this.#api?.forget(seen),
      journal: () => this.#openJournal(),
      isPaused: () => this.#paused,
      changed: (record) => this.#reportState(record),
      started: (record) => this.#emit('started', this.#snapshot(record)),
      progress: (record, force) => this.#progress(record, force),
      retrying: (record, info) => this.#retrying(record, info),
      stalled: (record) => {
        record.phase = 'stalled';
        this.#logger.warn(
          { upload: record.localPath, stalledTimeout: this.#config.stalledTimeout },
          'request stalled; aborting it',
        );
        this.#emit('stalled', this.#snapshot(record));
        this.#reportState(record);
      },
      completed: (record, deduplicated) => {
        this.#forgetPending(record);
        this.#forgetEarlierFailures(record);
        this.#trimCompleted(record);
        this.#announcing.add(record);
        const announce = (): void => {
          this.#announcing.delete(record);
          const snapshot = this.#snapshot(record);
          const started = record.startedAt ? Date.parse(record.startedAt) : Date.parse(record.queuedAt);
          const duration = Math.max(0, (Date.parse(record.finishedAt ?? new Date().toISOString()) - started) / 1000);
          this.#logger.info(
            {
              upload: record.localPath,
              remotePath: record.remotePath,
              bytes: record.bytesTotal,
              seconds: roundSeconds(duration),
              deduplicated,
            },
            deduplicated
              ? `verified ${record.remotePath} (${formatSize(record.bytesTotal)}): the server already held it`
              : `verified ${record.remotePath} (${formatSize(record.bytesTotal)}) in ${roundSeconds(duration)} s`,
          );
          this.#emit('completed', { upload: snapshot, sha256: record.sha256 ?? '', duration, deduplicated });
          this.#reportState(record);
          this.#settled(record);
        };
        // Announced once the journal's "completed" is durable (listeners may delete the file).
        // If that fsync fails the server still holds the file: announce it, and say so.
        (this.#journal?.durable() ?? Promise.resolve()).then(announce, (error: unknown) => {
          this.#logger.error(
            { upload: record.localPath, error: describeFailure(error) },
            'the journal could not be made durable',
          );
          announce();
        });
      },
      failed: (record, error) => {
        this.#failedRecords.add(record);
        this.#logger.error({ upload: record.localPath, code: error.code, reason: error.message }, 'upload failed');
        this.#emit('failed', { upload: this.#snapshot(record), reason: error.message, code: error.code });
        this.#reportState(record);
        this.#forgetPending(record);
        this.#settled(record);
      },
      networkDown: (reason) => this.#setOffline(reason),
      reachable: () => this.#setOnline(),
      requeueDelay: (ms, signal) => this.#requeueDelay(ms, signal),
      blocked: (error) => this.#block(error),
      whenUnblocked: (signal) => this.#whenUnblocked(signal),
    };
  }

  #progress(record: UploadRecord, force: boolean): void {
    const now = performance.now();
    if (!force && now - record.lastProgressAt < PROGRESS_INTERVAL_MS) return;
    record.lastProgressAt = now;
    const upload = this.#snapshot(record);
    this.#emit('progress', {
      upload,
      bytesSent: upload.bytesSent,
      bytesTotal: upload.bytesTotal,
      rate: upload.rate,
      etaSeconds: upload.etaSeconds,
    });
  }

  #retrying(record: UploadRecord, info: RetryInfo): void {
    // The first retry of a request is news; the ones after it (the same reason, with backoff) are detail.
    this.#logger[info.attempt <= 1 ? 'warn' : 'debug'](
      { upload: record.localPath, attempt: info.attempt, delay: roundSeconds(info.delay), reason: info.reason },
      `retrying ${record.remotePath} in ${roundSeconds(info.delay)} s: ${info.reason}`,
    );
    this.#emit('retrying', {
      upload: this.#snapshot(record),
      attempt: info.attempt,
      delay: info.delay,
      reason: info.reason,
    });
    this.#reportState(record);
  }

  #setOffline(reason: string): void {
    if (!this.#online || !this.#started) return;
    this.#online = false;
    this.#offlineSince = performance.now();
    this.#updateGate();
    this.#logger.warn({ reason, server: this.serverUrl }, 'server unreachable: offline; probing it with backoff');
    this.#emit('offline', { reason });
    this.#probe.start();
  }

  #setOnline(): void {
    if (this.#online) return;
    this.#online = true;
    this.#probe.stop();
    this.#updateGate();
    const offlineSeconds = (performance.now() - this.#offlineSince) / 1000;
    this.#logger.info(
      { server: this.serverUrl, offlineSeconds: roundSeconds(offlineSeconds) },
      `server back online after ${formatDuration(offlineSeconds)}`,
    );
    this.#emit('online');
    for (const wake of [...this.#onlineWaiters]) wake();
  }

  #requeueDelay(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#onlineWaiters.delete(done);
        resolve();
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#onlineWaiters.delete(done);
        reject(signal.reason);
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#onlineWaiters.add(done);
    });
  }

  async #checkHealth(signal: AbortSignal): Promise<boolean> {
    const api = this.#api;
    if (!api) return false;
    try {
      // Back online may mean another server (or the same one upgraded): its answer says which API it speaks.
      api.learn(
        await api.native.health({
          timeoutMs: this.#config.initTimeout * 1000,
          stalledMs: this.#config.stalledTimeout * 1000,
          signal,
        }),
      );
    } catch (error) {
      if (isUploadError(error, 'TLS_CERTIFICATE')) {
        this.#block(error);
        return false;
      }
      const status = (error as UploadError).details?.status;
      // Any answer below 500 means the server is there (a 401 or 404 is not an outage).
      if (typeof status !== 'number' || status >= 500) return false;
      api.forget();
    }
    this.#unblock('TLS_CERTIFICATE');
    return true;
  }

  /**
   * While the state disk is full: whether it has room again (a little free space, so a write
   * that happens to fit in the journal's existing WAL pages does not end the wait too early) and
   * the journal takes a durable write.
   */
  #stateWritable(): boolean {
    const journal = this.#journal;
    if (!journal) return true;
    try {
      const disk = statfsSync(path.dirname(journal.file));
      if (disk.bavail * disk.bsize < MIN_FREE_STATE_BYTES) return false;
      journal.probeWritable();
      return true;
    } catch (error) {
      if (!isUploadError(error, 'STATE_DISK_FULL'))
        this.#logger.warn({ error: describeFailure(error) }, 'the journal cannot be written');
      return false;
    }
  }

  /**
   * A problem stops every upload (see EngineProblem): no slot is granted until it is gone. It is
   * logged at error once, reported in `problems` and by a `blocked` event, and watched: the
   * journal is probed until the state disk takes writes again; the server's /health until its
   * certificate is accepted (or the settings change).
   */
  #block(error: UploadError): void {
    const code = error.code;
    if (code !== 'STATE_DISK_FULL' && code !== 'TLS_CERTIFICATE') return;
    const known = this.#problems.get(code);
    if (known) {
      known.message = error.message;
    } else {
      const problem: EngineProblem = { code, message: error.message, since: new Date().toISOString() };
      this.#problems.set(code, problem);
      this.#updateGate();
      this.#logger.error(
        { code, reason: error.message, ...(code === 'STATE_DISK_FULL' ? { stateDir: this.#config.stateDir } : {}) },
        code === 'STATE_DISK_FULL'
          ? 'the state disk is full: no new uploads until space is freed (uploads resume by themselves)'
          : 'the server certificate is refused: uploads wait until the TLS configuration is fixed',
      );
      this.#emit('blocked', { ...problem });
    }
    if (!this.#started) return;
    if (code === 'STATE_DISK_FULL') this.#stateProbe.start();
    else this.#probe.start();
  }

  #unblock(code: EngineProblem['code']): void {
    const problem = this.#problems.get(code);
    if (!problem) return;
    this.#problems.delete(code);
    if (code === 'STATE_DISK_FULL') this.#stateProbe.stop();
    this.#logger.info(
      { code },
      code === 'STATE_DISK_FULL'
        ? 'the state disk takes writes again: uploads go on'
        : 'the server certificate is accepted: uploads go on',
    );
    this.#emit('unblocked', { ...problem });
    this.#updateGate();
    if (this.#problems.size === 0) for (const wake of [...this.#unblockWaiters]) wake();
  }

  /** Resolves once no problem blocks the engine (at once when none does), or rejects when `signal` aborts. */
  #whenUnblocked(signal: AbortSignal): Promise<void> {
    if (this.#problems.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.#unblockWaiters.delete(done);
        resolve();
      };
      const onAbort = (): void => {
        this.#unblockWaiters.delete(done);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#unblockWaiters.add(done);
    });
  }

  /** Slots are granted only while started, not paused, online, and nothing blocks the engine. */
  #updateGate(): void {
    if (this.#started && !this.#paused && this.#online && this.#problems.size === 0) this.#slots.open();
    else this.#slots.close();
  }

  #snapshot(record: UploadRecord): UploadSnapshot {
    return snapshotOf(record, this.#paused);
  }

  /** Emits `state` when the derived state of a record changed. */
  #reportState(record: UploadRecord): void {
    const snapshot = this.#snapshot(record);
    if (snapshot.state === record.reportedState) return;
    record.reportedState = snapshot.state;
    this.#emit('state', snapshot);
  }

  /** Listener errors are logged, never thrown into the engine. */
  #emit<K extends keyof NetworkManagerEvents>(event: K, ...args: NetworkManagerEvents[K]): void {
    try {
      (this.emit as (name: K, ...rest: NetworkManagerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#logger.error({ event, error: describeFailure(error) }, 'an event listener threw');
    }
  }

  /**
   * A file verified now is no longer failed: earlier failed uploads of it (the same local and
   * remote path) are forgotten, so the status shows only current failures.
   */
  #forgetEarlierFailures(record: UploadRecord): void {
    for (const other of [...this.#failedRecords]) {
      if (other.phase !== 'failed' || this.#records.get(other.id) !== other) {
        this.#failedRecords.delete(other);
        continue;
      }
      if (other === record) continue;
      if (other.localPath !== record.localPath || other.remotePath !== record.remotePath) continue;
      this.#records.delete(other.id);
      this.#failedRecords.delete(other);
      this.#journal?.deleteUpload(other.id);
    }
  }

  /** Remembers a completed upload and forgets the oldest beyond FINISHED_KEPT (O(1) per upload). */
  #trimCompleted(record: UploadRecord): void {
    this.#completedOrder.add(record);
    for (const oldest of this.#completedOrder) {
      if (this.#completedOrder.size <= FINISHED_KEPT) break;
      this.#completedOrder.delete(oldest);
      if (this.#records.get(oldest.id) === oldest && oldest.phase === 'completed') this.#records.delete(oldest.id);
    }
  }

  /** An upload completed (announced), failed or was cancelled: whoever waits for it, or for idleness, goes on. */
  #settled(record: UploadRecord): void {
    this.#waiters.settled(this.#snapshot(record));
    this.#waiters.maybeIdle(this.idle);
  }

  #forgetPending(record: UploadRecord): void {
    const key = pendingKey(record.localPath, record.remotePath);
    if (this.#pendingByKey.get(key) === record) this.#pendingByKey.delete(key);
  }

  #openJournal(): Journal {
    if (this.#journal) return this.#journal;
    const stateDir = this.#config.stateDir;
    const journal = Journal.open(stateDir, {
      onSetAside: ({ file, movedTo, reason }) =>
        this.#logger.error(
          { journal: file, movedTo, reason },
          `the journal ${file} was damaged (${reason}): set aside as ${movedTo}; starting a new one ` +
            '(pending uploads are found again from the server and the folder)',
        ),
      onDiskFull: (error) => this.#block(error),
    });
    try {
      this.#lock = StateLock.acquire(stateDir);
    } catch (error) {
      journal.close();
      throw error;
    }
    this.#journal = journal;
    return journal;
  }

  #closeJournal(): void {
    this.#seqFromJournal = false;
    this.#journal?.close();
    this.#journal = undefined;
    this.#lock?.release();
    this.#lock = undefined;
  }

  #makeTransport(): HttpTransport {
    return new HttpTransport({
      serverUrl: this.serverUrl,
      token: this.#token(),
      caFile: this.#config.caFile,
      clientCert: this.#config.clientCert,
      clientKey: this.#config.clientKey,
      connectTimeoutMs: this.#config.initTimeout * 1000,
    });
  }

  /** The bearer token: `token`, or the first line of `tokenFile` (read at each connect: a rotated file is used). */
  #token(): string | undefined {
    const { token, tokenFile } = this.#config;
    if (token !== undefined && tokenFile !== undefined) {
      throw new UploadError(
        'CONFIG_INVALID',
        'Both token and tokenFile are set: give the token one way (tokenFile, or UPLOAD_AGENT_TOKEN)',
        { details: { option: 'tokenFile' } },
      );
    }
    return tokenFile === undefined ? token : readTokenFile(tokenFile);
  }

  #openTransport(): void {
    const transport = this.#makeTransport();
    this.#transport = transport;
    this.#api = new ApiSelector(transport, (server) => this.#legacyOnly(server));
  }

  /** A probe found a server that only offers the legacy API: said once per server, at warn. */
  #legacyOnly(server: string): void {
    this.#emit('legacyApi', { server });
    if (this.#legacyWarned.has(server)) return;
    this.#legacyWarned.add(server);
    this.#logger.warn(
      { server, api: 'legacy' },
      `the server ${server} only offers the legacy (v0) dashboard API: uploading through it, with weaker ` +
        'integrity (an MD5 per file, no checksum per chunk or per request, no resume by file). ' +
        'Fix: upgrade the server to ros2-upload-server, or enable its native API (drop --no-native-api)',
    );
  }

  #journalSession(id: string): string | undefined {
    return this.#journal?.getUpload(id)?.sessionId;
  }

  /** Merges the journal's uploads into memory (a restart, or start() after stop()). */
  #loadJournal(): void {
    const journal = this.#openJournal();
    try {
      journal.pruneCompleted(FINISHED_KEPT);
    } catch (error) {
      // Housekeeping only (a full state disk is reported by the journal): the rows stay for now.
      this.#logger.debug({ error: describeFailure(error) }, 'could not prune the journal');
    }
    for (const row of journal.loadUploads(100)) {
      this.#nextSeq = Math.max(this.#nextSeq, row.seq + 1);
      const existing = this.#records.get(row.id);
      if (existing) continue;
      const record = newRecord({
        id: row.id,
        seq: row.seq,
        localPath: row.localPath,
        remotePath: row.remotePath,
        bagName: row.bagName,
        priority: row.priority,
        metadata: row.metadata,
        replace: row.replace,
        bytesTotal: row.bytesTotal,
        queuedAt: row.queuedAt,
      });
      record.phase = row.state === 'queued' ? 'queued' : row.state;
      record.startedAt = row.startedAt;
      record.finishedAt = row.finishedAt;
      if (row.mtimeMs !== undefined) record.closedAt = new Date(row.mtimeMs).toISOString();
      record.sha256 = row.sha256;
      record.lastError = row.lastError;
      record.errorCode = row.errorCode;
      if (row.state === 'completed') record.bytesAcked = row.bytesTotal;
      if (row.sessionId && row.sessionServer && row.chunkSize && row.size !== undefined && row.mtimeMs !== undefined) {
        record.session = {
          id: row.sessionId,
          server: row.sessionServer,
          chunkSize: row.chunkSize,
          version: { size: row.size, mtimeMs: row.mtimeMs },
        };
        record.bytesAcked = Math.min(row.bytesTotal, journal.ackedChunks(row.id).length * row.chunkSize);
      }
      this.#records.set(record.id, record);
      if (row.state === 'completed') this.#completedOrder.add(record);
      else if (row.state === 'queued') this.#pendingByKey.set(pendingKey(record.localPath, record.remotePath), record);
      else if (row.state === 'failed') this.#failedRecords.add(record);
      this.#reportState(record);
    }
  }
}

function pendingKey(localPath: string, remotePath: string): string {
  return `${localPath}\0${remotePath}`;
}
