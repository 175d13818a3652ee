import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { roundSeconds } from '../../common/config/units.js';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { createLogger } from '../../common/program/create-logger.js';
import { escapeRefusedCharacters } from '../../common/protocol/relative-path.js';
import type { AgentController, AgentProblem, AgentStatus, DrainResult, EnqueueResult } from './agent-controller.js';
import { agentOptionSpecs, agentOptions, type AgentConfig } from './agent-options.js';
import { checkStateDir, checkWatchDir } from './check-dirs.js';
import { engineOptionSpecs } from '../engine/engine-options.js';
import { NetworkManager } from '../engine/network-manager.js';
import type { CompletedEvent, FailedEvent, UploadSnapshot } from '../engine/upload-events.js';
import { afterUploadIntent, carryOut, moveTarget, type IntentOutcome } from '../watcher/after-upload.js';
import { listForUpload, type ListedFile } from '../watcher/bag-listing.js';
import { HeldBackWriter } from './held-back-file.js';
import { BagWatcher, type HeldBackFile, type ReleasedFile, type WaitingFile } from '../watcher/bag-watcher.js';
import { DiskGuard } from '../watcher/disk-guard.js';
import { UploadLedger, type AfterUploadIntent } from '../watcher/upload-ledger.js';

export interface UploadAgentOptions {
  /** Settings by option key (any subset; the rest are defaults), validated by the agent's option set. */
  config?: Partial<AgentConfig>;
  logger?: Logger;
  /** Free bytes on the recording disk; default statfs. Tests inject it to exercise the disk guard. */
  freeSpace?: (dir: string) => Promise<number>;
  /**
   * Folders never watched even when inside the watch folder (the bundled server's storage).
   * The state directory and the move target are always skipped.
   */
  skipDirs?: string[];
}

/** A file the server verified and that did not change during its upload. */
export interface VerifiedFile {
  localPath: string;
  remotePath: string;
  size: number;
  sha256: string;
  /** The server already held it; nothing was sent. */
  deduplicated: boolean;
}

/**
 * A file that is not sent: its name is refused by the path rule (a control, invisible format or
 * separator character; rename it), or it is a bag's metadata.yaml that waits for a file of its
 * bag that failed or was refused.
 */
export interface HeldFile {
  localPath: string;
  remotePath: string;
  reason: string;
}

export interface UploadAgentEvents {
  verified: [VerifiedFile];
  /**
   * An explicitly enqueued file is not sent: refused (its name), or a metadata.yaml waiting for a
   * file of its bag that failed (retryFailed() may unblock it) or was refused.
   */
  held: [HeldFile];
  /** The engine gave up on a file (a permanent error); retryFailed() puts it back. */
  failed: [FailedEvent];
  /**
   * Something now stops every upload until it is fixed (a full state disk, a refused server
   * certificate); see AgentProblem. The daemon waits and goes on by itself; `upload` exits.
   */
  problem: [AgentProblem];
}

/** What the agent knows about one file it handed to the engine. */
interface Handed {
  id: string | undefined;
  /** Settles once the engine accepted it (the id is known). */
  adding: Promise<string | undefined>;
  /** The version the watcher confirmed closed (watched files only). */
  release: ReleasedFile | undefined;
  remotePath: string;
  /** Inside the watch root: the after-upload policy applies and the watcher is told. */
  watched: boolean;
  completesBag: boolean;
}

/** How a file is handed to the engine. */
interface AddOptions {
  remotePath: string;
  bagName: string;
  priority: number | undefined;
  metadata: Record<string, unknown> | undefined;
  replace: boolean;
  /** The version the watcher released (watched files only). */
  release: ReleasedFile | undefined;
}

/** A verified file whose recording (ledger) or after-upload action is still to do. */
interface VerifiedWork {
  localPath: string;
  event: CompletedEvent;
  handed: Handed | undefined;
  /** The version the server verified, stat'ed after the upload. */
  version: { size: number; mtimeMs: number; ino: number };
  /** `record`: the ledger, the watcher and listeners are still to be told; `after-upload`: only the action is left. */
  stage: 'record' | 'after-upload';
}

/** A manually enqueued metadata.yaml, waiting until the rest of its bag is verified. */
interface DeferredMetadata {
  file: ListedFile;
  /** `<bag folder>/`: the files it waits for are those under it. */
  dir: string;
  waitFor: Set<string>;
  /** Every file of the batch was queued: an empty waitFor now means "go". */
  sealed: boolean;
  priority: number | undefined;
  metadata: Record<string, unknown> | undefined;
}

/** How often the held-back list is compared with what was last written to the state directory. */
const HELD_BACK_WRITE_MS = 2000;
const ENGINE_KEYS = new Set(Object.keys(engineOptionSpecs));
/** While draining, the files the recorder closes go first (1 = first), before any backlog. */
const DRAIN_PRIORITY = 1;
/** The drain re-checks on every change, and at least this often. */
const DRAIN_POLL_MS = 500;
const LIVE_WATCHER_KEYS = new Set([
  'drainTimeout',
  'settleTime',
  'quietPeriod',
  'rescanInterval',
  'unclosedTimeout',
  'afterUpload',
  'moveTo',
  'minFreeSpace',
  'deleteUploadedWhenLow',
  'diskCheckInterval',
  'logLevel',
]);

/**
 * The agent: the recording watcher feeding the upload engine, the after-upload policy and the
 * disk guard, behind the AgentController interface the CLI and the ROS node drive.
 *
 * The flow for a watched file: the watcher releases it once it is confirmed closed (in split
 * order, metadata.yaml last); the engine uploads it; on `completed` the file is stat'ed again,
 * and only if it is still exactly the version the watcher released and the engine uploaded is
 * it recorded as done (ledger), reported to the watcher (which may release the bag's
 * metadata.yaml) and handed to the after-upload policy. Otherwise it is uploaded again, with
 * replace. A released file that turns out transient (file-compression mode) is cancelled and
 * its server session dropped.
 */
export class UploadAgent extends EventEmitter<UploadAgentEvents> implements AgentController {
  readonly config: AgentConfig;
  readonly #logger: Logger;
  readonly #engine: NetworkManager;
  #watcher: BagWatcher | undefined;
  #ledger: UploadLedger | undefined;
  #guard: DiskGuard | undefined;
  #guardTimer: NodeJS.Timeout | undefined;
  /** `<state dir>/held-back.json`, for the `status` command (another process). */
  #heldBackWriter: HeldBackWriter | undefined;
  readonly #freeSpace: ((dir: string) => Promise<number>) | undefined;
  readonly #skipDirs: string[];
  readonly #handed = new Map<string, Handed>();
  readonly #byId = new Map<string, string>();
  readonly #deferred: DeferredMetadata[] = [];
  readonly #listeners = new Set<(upload: UploadSnapshot | undefined) => void>();
  #started = false;
  /** The watch folder, symlinks resolved. */
  #watchRoot: string | undefined;
  #stopping: Promise<void> | undefined;
  /**
   * Hand-overs to the engine run one after another, so the engine numbers uploads in the order
   * they were handed over (it starts them in that order, within a priority): splits of a bag start
   * in index order whatever the file system's timing.
   */
  #handOver: Promise<unknown> = Promise.resolve();
  /** Files the watcher released in this turn of the event loop: handed over as one batch. */
  #released: ReleasedFile[] = [];
  #releaseScheduled = false;
  /** The agent's own work in flight: enqueues, hand-overs to the engine, completions being checked. */
  #busy = 0;
  readonly #unbusy: (() => void)[] = [];
  /** Set while drain() runs: files released then go first. */
  #draining = false;
  /** Woken on every change while drain() waits. */
  readonly #changeWaiters = new Set<() => void>();
  /** The agent's own problems (its ledger's disk full); the engine reports its own. */
  readonly #problems = new Map<string, AgentProblem>();
  /** Verified files whose ledger row or after-upload action waits for space on the state disk. */
  #deferredWork: VerifiedWork[] = [];
  /** Closed files that could not be queued (the journal's disk was full): queued once it has space. */
  readonly #deferredReleases = new Map<string, ReleasedFile>();
  #retryTimer: NodeJS.Timeout | undefined;
  #retryFailures = 0;

  constructor(options: UploadAgentOptions = {}) {
    super();
    this.config = agentOptions.resolve(
      agentOptions.parse((options.config ?? {}) as Record<string, unknown>, 'UploadAgent options'),
    );
    this.#logger =
      options.logger ??
      createLogger({ name: 'ros2-upload-agent', level: this.config.logLevel, specs: [agentOptionSpecs] });
    this.#freeSpace = options.freeSpace;
    this.#skipDirs = options.skipDirs ?? [];
    const engineSettings: Record<string, unknown> = {};
    for (const key of ENGINE_KEYS) engineSettings[key] = (this.config as Record<string, unknown>)[key];
    this.#engine = new NetworkManager({ ...engineSettings, logger: this.#logger });
    this.#engine.on(
      'completed',
      (event) =>
        void this.#track(this.#onCompleted(event)).catch((error: unknown) =>
          this.#logger.error({ err: error }, 'after-upload handling failed'),
        ),
    );
    this.#engine.on('failed', (event) => this.#onFailed(event));
    this.#engine.on('state', (upload) => this.#notify(upload));
    this.#engine.on('progress', (event) => this.#notify(event.upload));
    this.#engine.on('online', () => this.#notify(undefined));
    this.#engine.on('offline', ({ reason }) => {
      this.#logger.warn({ reason }, 'server unreachable; uploads wait and resume when it is back');
      this.#notify(undefined);
    });
    this.#engine.on('blocked', (problem) => {
      this.emit('problem', problem);
      this.#notify(undefined);
    });
    this.#engine.on('unblocked', () => {
      this.#notify(undefined);
      this.#retryDeferredSoon(0);
    });
  }

  /** The engine (for the CLI's progress output and for tests). */
  get engine(): NetworkManager {
    return this.#engine;
  }

  /** The watcher, when a watch folder is configured. */
  get watcher(): BagWatcher | undefined {
    return this.#watcher;
  }

  /**
   * Checks the state directory, starts the engine (which locks the state directory: a second
   * agent on it fails with STATE_DIR_LOCKED), then the watcher with its start-up backlog scan,
   * and the disk guard.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    const stateDir = path.resolve(this.config.stateDir);
    const stateDirWarning = checkStateDir(stateDir);
    if (stateDirWarning) this.#logger.warn({ stateDir }, stateDirWarning);
    let watchRoot: string | undefined;
    if (this.config.watchDir) watchRoot = checkWatchDir(this.config.watchDir, this.config.createWatchDir);
    this.#watchRoot = watchRoot;
    await this.#engine.start();
    try {
      this.#ledger = new UploadLedger(stateDir, {
        onSetAside: ({ file, movedTo, reason }) =>
          this.#logger.error(
            { ledger: file, movedTo, reason },
            `the ledger of uploaded files ${file} was damaged (${reason}): set aside as ${movedTo}; ` +
              'starting a new one (the journal and the server tell again what was uploaded)',
          ),
      });
      for (const upload of this.#engine.status()) {
        if (upload.state !== 'completed' && upload.state !== 'failed') this.#adopt(upload);
      }
      // After-upload actions decided before a crash or power loss, and maybe not durable: done now.
      for (const intent of this.#ledger.intents()) await this.#carryOut(intent, true);
      if (watchRoot) {
        await this.#startWatching(watchRoot);
        await this.#finishJournaledCompletions();
      }
    } catch (error) {
      await this.#engine.stop();
      this.#ledger?.close();
      throw error;
    }
    this.#started = true;
  }

  async #startWatching(root: string): Promise<void> {
    const ledger = this.#ledger!;
    const moveDir =
      this.config.afterUpload === 'move' || this.config.moveTo ? moveTarget(root, this.config.moveTo) : undefined;
    const watcher = new BagWatcher({
      root,
      settleTime: this.config.settleTime,
      quietPeriod: this.config.quietPeriod,
      rescanInterval: this.config.rescanInterval,
      unclosedTimeout: this.config.unclosedTimeout,
      include: this.config.include,
      exclude: this.config.exclude,
      // Never upload our own state, the bundled server's storage or the move target, should they lie inside the root.
      skipDirs: [...this.#skipDirs, this.config.stateDir, ...(moveDir ? [moveDir] : [])].map((dir) =>
        realPathOrResolved(dir),
      ),
      isUploaded: (file, version) =>
        ledger.isVerified(file, version) || sameVersion(this.#engine.completedFile(file), version),
      wasUploaded: (file, { ino }) => ledger.get(file)?.ino === ino,
      logger: this.#logger,
    });
    this.#watcher = watcher;
    watcher.on('release', (file) => this.#onRelease(file));
    watcher.on(
      'withdraw',
      (file) =>
        void this.#withdraw(file.path, file.reason).catch((error: unknown) =>
          this.#logger.warn({ err: error, file: file.path }, 'could not withdraw an upload'),
        ),
    );
    watcher.on('waiting', (file) => this.#notify(waitingSnapshot(file)));
    watcher.on('heldBack', (held) => {
      this.#notify(heldSnapshot(held));
      void this.#heldBackWriter?.flush();
    });
    watcher.on('error', (error) => this.#logger.error({ err: error }, 'watcher error'));
    this.#guard = new DiskGuard({
      root: watcher.root,
      minFreeSpace: this.config.minFreeSpace,
      deleteUploadedWhenLow: this.config.deleteUploadedWhenLow,
      ledger,
      ...(this.#freeSpace ? { freeSpace: this.#freeSpace } : {}),
      onDeleted: (file) => watcher.forget(file),
      logger: this.#logger,
    });
    await watcher.start();
    this.#heldBackWriter = new HeldBackWriter(
      path.resolve(this.config.stateDir),
      () => watcher.heldBack(),
      (error) => this.#logger.debug({ err: error }, 'cannot write the list of held-back files; trying again'),
    );
    this.#heldBackWriter.start(HELD_BACK_WRITE_MS);
    await this.#checkDisk();
    this.#scheduleDiskCheck();
    this.#logger.info(
      { watchDir: watcher.root, server: this.#engine.serverUrl, afterUpload: this.config.afterUpload },
      'watching for recordings',
    );
  }

  // ---- AgentController --------------------------------------------------------------------

  status(): AgentStatus {
    const waiting = (this.#watcher?.waiting() ?? []).map(waitingSnapshot);
    const heldBack = this.#watcher?.heldBack() ?? [];
    // Held-back paths the watcher does not track (links, special files, unusable names) are
    // listed too, so everything held back shows wherever the uploads do.
    const tracked = new Set(waiting.map((upload) => upload.localPath));
    const untracked = heldBack.filter((held) => !tracked.has(held.path)).map(heldSnapshot);
    const uploads = [...waiting, ...untracked, ...this.#engine.status()];
    const disk = this.#guard?.state;
    const problems: AgentProblem[] = this.#engine.problems;
    for (const problem of this.#problems.values())
      if (!problems.some((known) => known.code === problem.code)) problems.push({ ...problem });
    return {
      heldBack,
      problems,
      online: this.#engine.online,
      paused: this.#engine.paused,
      bandwidthLimit: this.#engine.bandwidthLimit,
      uploads,
      bytesPending:
        this.#engine.bytesPending +
        waiting.reduce((sum, upload) => sum + (upload.state === 'failed' ? 0 : upload.bytesTotal), 0),
      freeDiskBytes: disk?.free,
      lowDisk: disk?.low ?? false,
    };
  }

  pause(): void {
    this.#engine.pause();
    this.#notify(undefined);
  }

  resume(): void {
    this.#engine.resume();
    this.#notify(undefined);
  }

  enqueue(
    filePath: string,
    options: { priority?: number; metadata?: Record<string, unknown> } = {},
  ): Promise<EnqueueResult> {
    return this.#track(this.#enqueue(filePath, options));
  }

  /**
   * Resolves once nothing is left to do with what the agent was given: the engine is idle (no
   * upload queued, running, retrying or waiting for the network; see NetworkManager.onIdle), no
   * completion is being checked (which may queue a bag's metadata.yaml), and no enqueue or
   * hand-over to the engine is under way. A metadata.yaml held back because a file of its bag
   * failed does not count (it goes after retryFailed()), nor do files the watcher has seen but
   * not released yet (a recording may go on for hours).
   */
  async onIdle(): Promise<void> {
    for (;;) {
      await this.#engine.onIdle();
      if (this.#busy === 0) return;
      // The work in flight may queue more uploads: wait for it, then for the engine again.
      await new Promise<void>((resolve) => this.#unbusy.push(resolve));
    }
  }

  async #enqueue(
    filePath: string,
    options: { priority?: number; metadata?: Record<string, unknown> },
  ): Promise<EnqueueResult> {
    let files: ListedFile[];
    try {
      files = await listForUpload(filePath, { allFiles: true, ...(this.#watcher ? { root: this.#watcher.root } : {}) });
    } catch (error) {
      return { accepted: false, message: (error as Error).message, uploadIds: [] };
    }
    if (files.length === 0) return { accepted: false, message: `No bag files in ${filePath}`, uploadIds: [] };
    const ids: string[] = [];
    // Each metadata.yaml waits for the other files of its bag folder queued here. Ids are added
    // as soon as the engine returns them (no I/O in between), so no completion is missed.
    const entries: DeferredMetadata[] = files
      .filter((file) => file.isMetadata)
      .map((file) => ({
        file,
        dir: `${path.posix.dirname(file.remotePath)}/`,
        waitFor: new Set<string>(),
        sealed: false,
        priority: options.priority,
        metadata: options.metadata,
      }));
    this.#deferred.push(...entries);
    // The files go to the engine as one batch (one journal commit for the whole folder).
    const batch = files.filter((f) => !f.isMetadata);
    const added = await this.#addMany(
      batch.map((file) => ({
        localPath: file.path,
        options: {
          remotePath: file.remotePath,
          bagName: file.bagName,
          priority: options.priority,
          metadata: options.metadata,
          replace: false,
          release: undefined,
        },
      })),
    );
    const refused: { file: ListedFile; reason: string }[] = [];
    for (const [index, file] of batch.entries()) {
      const outcome = added[index]!;
      if (outcome.status === 'rejected') {
        const error = outcome.reason as Error;
        const reason = isUploadError(error, 'INVALID_PATH')
          ? `${error.message}; rename it to upload it`
          : error.message;
        refused.push({ file, reason });
        this.emit('held', { localPath: file.path, remotePath: file.remotePath, reason });
        continue;
      }
      const id = outcome.value;
      if (!id) continue;
      ids.push(id);
      for (const entry of entries) if (file.remotePath.startsWith(entry.dir)) entry.waitFor.add(id);
    }
    // A bag with a refused file never gets its metadata.yaml: a receiver takes its arrival to
    // mean the bag is complete. Other bags of the same request go on.
    for (const entry of entries) {
      const blocker = refused.find(({ file }) => file.remotePath.startsWith(entry.dir));
      if (!blocker) continue;
      this.#deferred.splice(this.#deferred.indexOf(entry), 1);
      this.emit('held', {
        localPath: entry.file.path,
        remotePath: entry.file.remotePath,
        reason: `it goes after ${escapeRefusedCharacters(blocker.file.remotePath)}, which was not sent`,
      });
    }
    for (const entry of entries) entry.sealed = true;
    const waiting = entries.filter((entry) => entry.waitFor.size > 0).length;
    await this.#releaseDeferred(undefined, ids);
    const [first] = refused;
    if (first) {
      const more = refused.length > 1 ? ` (and ${refused.length - 1} more file(s))` : '';
      return { accepted: ids.length > 0, message: `${first.file.path}: ${first.reason}${more}`, uploadIds: ids };
    }
    return {
      accepted: true,
      message:
        `Queued ${ids.length} file(s) from ` +
        `${filePath}${waiting > 0 ? `; metadata.yaml follows once the rest of its bag is verified` : ''}`,
      uploadIds: ids,
    };
  }

  retryFailed(): number {
    return this.#engine.retryFailed();
  }

  setOption(key: string, value: unknown): void {
    const name = agentOptions.keyOf(key);
    if (!name) throw new UploadError('CONFIG_UNKNOWN_OPTION', `Unknown option "${key}"`, { details: { option: key } });
    const parsed = agentOptions.parseValue(name, value, 'setOption');
    if (ENGINE_KEYS.has(name)) {
      this.#engine.setOption(name, parsed);
    } else if (!LIVE_WATCHER_KEYS.has(name)) {
      throw new UploadError(
        'CONFIG_INVALID',
        `${agentOptions.describe(name)} cannot change while the agent runs; restart it with the new value`,
        { details: { option: name } },
      );
    }
    (this.config as Record<string, unknown>)[name] = parsed;
    if (name === 'settleTime' || name === 'quietPeriod' || name === 'rescanInterval' || name === 'unclosedTimeout')
      this.#watcher?.setOptions({ [name]: parsed });
    if (name === 'minFreeSpace' || name === 'deleteUploadedWhenLow') {
      this.#guard?.setOptions({ [name]: parsed });
      void this.#checkDisk();
    }
    if (name === 'diskCheckInterval') this.#scheduleDiskCheck();
    if (name === 'logLevel') this.#logger.level = parsed as string;
    this.#notify(undefined);
  }

  markClosed(filePath: string): void {
    this.#watcher?.markClosed(filePath);
  }

  onChange(listener: (upload: UploadSnapshot | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The first step of a graceful stop: the watcher and the engine keep running until every file
   * of the recordings still being written or closing now (bag folders with such a file; their
   * other files and metadata.yaml, which goes last, included) is uploaded, or failed for
   * good, for at most `timeoutSeconds` (default: drainTimeout; 0: not at all), or until `cut`
   * aborts. That is the Ctrl-C of `ros2 launch`: the recorder closes its last split and
   * writes metadata.yaml while the agent drains. Files released meanwhile go before any backlog.
   * What is left is found again by the next start's scan (or resumed from the journal).
   */
  async drain(options: { timeoutSeconds?: number; cut?: AbortSignal } = {}): Promise<DrainResult> {
    const started = performance.now();
    const seconds = (): number => Math.round((performance.now() - started) / 100) / 10;
    const timeout = options.timeoutSeconds ?? this.config.drainTimeout;
    const watcher = this.#watcher;
    if (!watcher || this.#stopping) return { outcome: 'done', left: [], seconds: 0 };
    const folders = new Set(
      watcher
        .tracked()
        // Recordings being written or closing; a bag already closed on disk is backlog (next start).
        .filter((file) => file.phase === 'open' || file.phase === 'closing')
        .map((file) => file.dir),
    );
    if (folders.size === 0) return { outcome: 'done', left: [], seconds: 0 };
    if (timeout <= 0) return { outcome: 'timeout', left: this.#drainLeft(folders), seconds: 0 };
    this.#draining = true;
    const names = [...folders].map((dir) => dir || '.');
    this.#logger.info(
      { recordings: names, seconds: timeout },
      `draining: uploading what the recorder closes in ${names.join(', ')} for at most ${timeout} s`,
    );
    const deadline = started + timeout * 1000;
    try {
      for (;;) {
        const left = this.#drainLeft(folders);
        if (left.length === 0) {
          this.#logger.info({ seconds: seconds() }, 'drained: every file of those recordings is uploaded');
          return { outcome: 'done', left, seconds: seconds() };
        }
        const outcome = options.cut?.aborted ? 'cut' : performance.now() >= deadline ? 'timeout' : undefined;
        if (outcome) {
          this.#logger.warn(
            { left: left.slice(0, 20), count: left.length, seconds: seconds() },
            `${outcome === 'cut' ? 'drain cut short' : `drain time (${timeout} s) over`}: ${left.length} file(s) ` +
              'not uploaded yet; the next start uploads them',
          );
          return { outcome, left, seconds: seconds() };
        }
        await this.#nextChange(Math.min(DRAIN_POLL_MS, deadline - performance.now()), options.cut);
      }
    } finally {
      this.#draining = false;
    }
  }

  /** The files of these folders that are not uploaded yet and may still be (failed ones do not count). */
  #drainLeft(folders: Set<string>): string[] {
    const watcher = this.#watcher;
    if (!watcher) return [];
    const failed = new Set(
      this.#engine
        .status()
        .filter((upload) => upload.state === 'failed')
        .map((upload) => upload.localPath),
    );
    const files = watcher.tracked().filter((file) => folders.has(file.dir));
    const foldersWithFailures = new Set(files.filter((file) => failed.has(file.path)).map((file) => file.dir));
    const left = files
      .filter(
        (file) =>
          file.phase !== 'uploaded' &&
          file.phase !== 'transient' &&
          !failed.has(file.path) &&
          // A bag's metadata.yaml goes only after every other file: a failed one holds it back.
          !(file.role === 'metadata' && foldersWithFailures.has(file.dir)),
      )
      .map((file) => file.path);
    // A bag is complete only with its metadata.yaml, which the recorder writes last when it
    // compresses files (after the last .zstd, which may already be uploaded by then).
    for (const dir of folders) {
      const bagFiles = files.filter((file) => file.dir === dir);
      const split = bagFiles.find((file) => file.role === 'split');
      if (split && !foldersWithFailures.has(dir) && !bagFiles.some((file) => file.role === 'metadata'))
        left.push(path.join(path.dirname(split.path), 'metadata.yaml'));
    }
    return left;
  }

  /** Resolves on the next change of the agent's state, after `ms`, or when `cut` aborts. */
  #nextChange(ms: number, cut: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#changeWaiters.delete(done);
        cut?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#changeWaiters.add(done);
      cut?.addEventListener('abort', done, { once: true });
    });
  }

  #changed(): void {
    for (const wake of [...this.#changeWaiters]) wake();
  }

  /** Stops watching, then lets the engine drain for its stopTimeout and persist its state. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#guardTimer);
      clearTimeout(this.#retryTimer);
      await this.#watcher?.stop();
      await this.#heldBackWriter?.stop();
      await this.#engine.stop();
      this.#ledger?.close();
      this.#started = false;
    })();
    return this.#stopping;
  }

  // ---- internals --------------------------------------------------------------------------

  /** Counts `work` as the agent's own until it settles (see onIdle). */
  async #track<T>(work: Promise<T>): Promise<T> {
    this.#busy += 1;
    try {
      return await work;
    } finally {
      this.#busy -= 1;
      if (this.#busy === 0) for (const resolve of this.#unbusy.splice(0)) resolve();
      this.#changed();
    }
  }

  /**
   * Uploads the journal records as verified that the ledger does not know: the agent stopped
   * (kill -9, power loss) between the two. The watcher counts them as uploaded (isUploaded) and
   * never releases them again, so they are recorded and get their after-upload action here.
   */
  async #finishJournaledCompletions(): Promise<void> {
    for (const upload of this.#engine.status()) {
      if (upload.state !== 'completed' || upload.sha256 === undefined) continue;
      if (this.#ledger?.get(upload.localPath)?.sha256 === upload.sha256) continue;
      const info = await lstat(upload.localPath).catch(() => undefined);
      if (!info?.isFile()) continue;
      const version = { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };
      if (!sameVersion(this.#engine.completedFile(upload.localPath), version)) continue;
      const event = { upload, sha256: upload.sha256, duration: 0, deduplicated: true };
      await this.#finishOrDefer({ localPath: upload.localPath, event, handed: undefined, version, stage: 'record' });
    }
  }

  /** An upload the engine reloaded from its journal: remember it so the watcher's release joins it. */
  #adopt(upload: UploadSnapshot): void {
    const id = upload.id;
    const inRoot = this.#watchRoot !== undefined && isInside(upload.localPath, this.#watchRoot);
    this.#handed.set(upload.localPath, {
      id,
      adding: Promise.resolve(id),
      release: undefined,
      remotePath: upload.remotePath,
      watched: inRoot,
      completesBag: path.posix.basename(upload.remotePath) === 'metadata.yaml',
    });
    this.#byId.set(id, upload.localPath);
  }

  /** The watcher releases files in order within one pass: they go to the engine as one batch (one journal commit). */
  #onRelease(file: ReleasedFile): void {
    this.#released.push(file);
    if (this.#releaseScheduled) return;
    this.#releaseScheduled = true;
    queueMicrotask(() => {
      this.#releaseScheduled = false;
      const batch = this.#released;
      this.#released = [];
      if (batch.length === 0) return;
      void this.#addMany(
        batch.map((released) => ({
          localPath: released.path,
          options: {
            remotePath: released.remotePath,
            bagName: released.bagName,
            priority: this.#draining ? DRAIN_PRIORITY : undefined,
            // A split that was never closed goes flagged, so the receiving side knows (and can reindex it).
            metadata: released.unclosed ? { recovered: 'unclosed', reason: released.unclosed } : undefined,
            replace: released.replace,
            release: released,
          },
        })),
      ).then((outcomes) => {
        for (const [index, outcome] of outcomes.entries()) {
          const released = batch[index];
          if (outcome.status === 'fulfilled' || !released) continue;
          if (isUploadError(outcome.reason, 'STATE_DISK_FULL')) {
            // The engine reported it (logged, status, blocked); the file is queued once there is space.
            this.#deferredReleases.set(released.path, released);
            this.#logger.debug(
              { file: released.path },
              'state disk full: the closed file is queued once space is freed',
            );
            continue;
          }
          this.#logger.error({ err: outcome.reason, file: released.path }, 'could not queue a closed file');
        }
      });
    });
  }

  async #add(localPath: string, options: AddOptions): Promise<string | undefined> {
    const [outcome] = await this.#addMany([{ localPath, options }]);
    if (outcome!.status === 'rejected') throw outcome!.reason;
    return outcome!.value;
  }

  /**
   * Hands files to the engine in one batch (addUploads: one journal commit). Each settles with
   * its upload id, undefined when the file vanished before it could be queued, or the error that
   * refused it.
   */
  async #addMany(
    items: readonly { localPath: string; options: AddOptions }[],
  ): Promise<PromiseSettledResult<string | undefined>[]> {
    const handedList = items.map(({ localPath, options }) => {
      const watched =
        options.release !== undefined || (this.#watcher !== undefined && isInside(localPath, this.#watcher.root));
      const existing = this.#handed.get(localPath);
      const handed: Handed = {
        id: undefined,
        adding: Promise.resolve(undefined),
        release: options.release ?? existing?.release,
        remotePath: options.remotePath,
        watched,
        completesBag: path.posix.basename(options.remotePath) === 'metadata.yaml',
      };
      this.#handed.set(localPath, handed);
      return handed;
    });
    const handOver = this.#handOver.then(() =>
      this.#engine.addUploads(
        items.map(({ localPath, options }) => ({
          filePath: localPath,
          options: {
            remotePath: options.remotePath,
            bagName: options.bagName,
            replace: options.replace,
            ...(options.priority !== undefined ? { priority: options.priority } : {}),
            ...(options.metadata !== undefined ? { metadata: options.metadata } : {}),
          },
        })),
      ),
    );
    this.#handOver = handOver.catch(() => undefined);
    const batch = this.#track(handOver);
    for (const [index, handed] of handedList.entries()) {
      const localPath = items[index]!.localPath;
      handed.adding = batch.then((results) => {
        const result = results[index]!;
        if ('id' in result) {
          handed.id = result.id;
          this.#byId.set(result.id, localPath);
          return result.id;
        }
        if (this.#handed.get(localPath) === handed) this.#handed.delete(localPath);
        if (isUploadError(result.error, 'LOCAL_FILE_NOT_FOUND')) {
          this.#logger.info({ file: localPath }, 'file vanished before it could be queued');
          return undefined;
        }
        throw result.error;
      });
      // A journal failure rejects the whole batch: forget what was handed.
      handed.adding.catch(() => {
        if (this.#handed.get(localPath) === handed) this.#handed.delete(localPath);
      });
    }
    return Promise.allSettled(handedList.map((handed) => handed.adding));
  }

  async #withdraw(localPath: string, reason: string): Promise<void> {
    this.#released = this.#released.filter((file) => file.path !== localPath);
    const handed = this.#handed.get(localPath);
    if (!handed) return;
    const id = handed.id ?? (await handed.adding.catch(() => undefined));
    this.#handed.delete(localPath);
    if (!id) return;
    this.#byId.delete(id);
    this.#logger.info({ file: localPath, reason }, 'upload withdrawn');
    await this.#engine.cancel(id, { dropServerSession: true });
  }

  async #onCompleted(event: CompletedEvent): Promise<void> {
    const localPath = this.#byId.get(event.upload.id) ?? event.upload.localPath;
    const handed = this.#handed.get(localPath);
    this.#byId.delete(event.upload.id);
    if (handed && handed.id !== event.upload.id) return; // an older upload of a file handed again since
    this.#handed.delete(localPath);
    const uploaded = this.#engine.completedFile(localPath);
    let now: { size: number; mtimeMs: number; ino: number } | undefined;
    try {
      // lstat: a link swapped in at the path since is not the file that was verified.
      const info = await lstat(localPath);
      now = info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino } : undefined;
    } catch {
      now = undefined;
    }
    const released = handed?.release;
    const intact =
      now !== undefined && sameVersion(uploaded, now) && (released === undefined || sameVersion(released, now));
    if (!intact) {
      if (now === undefined) {
        this.#logger.info({ file: localPath }, 'file vanished right after its upload; nothing to record');
        return;
      }
      this.#logger.warn(
        { file: localPath, released, uploaded: uploaded && { size: uploaded.size, mtimeMs: uploaded.mtimeMs }, now },
        'file changed during its upload; discarding the result and uploading it again',
      );
      if (this.#watcher?.phaseOf(localPath) !== undefined) {
        this.#watcher.changedDuringUpload(localPath);
      } else {
        await this.#add(localPath, {
          remotePath: event.upload.remotePath,
          bagName: event.upload.bagName,
          priority: event.upload.priority,
          metadata: event.upload.metadata,
          replace: true,
          release: undefined,
        });
      }
      return;
    }
    await this.#finishOrDefer({ localPath, event, handed, version: now!, stage: 'record' });
  }

  /**
   * Records a verified file (ledger), tells the watcher and listeners, then applies the
   * after-upload policy. When the state disk is full the rest is deferred (never lost, never
   * done twice) and tried again once there is space.
   */
  async #finishOrDefer(work: VerifiedWork): Promise<void> {
    try {
      await this.#finishVerified(work);
    } catch (error) {
      if (!isUploadError(error, 'STATE_DISK_FULL')) throw error;
      this.#deferredWork.push(work);
      this.#setProblem(error);
      this.#retryDeferredSoon();
    }
  }

  async #finishVerified(work: VerifiedWork): Promise<void> {
    const { localPath, event, version } = work;
    if (work.stage === 'record') {
      this.#ledger?.record({
        localPath,
        remotePath: event.upload.remotePath,
        size: version.size,
        mtimeMs: version.mtimeMs,
        ino: version.ino,
        sha256: event.sha256,
        verifiedAt: Date.now(),
      });
      work.stage = 'after-upload';
      this.#logger.debug(
        {
          file: localPath,
          remotePath: event.upload.remotePath,
          sha256: event.sha256,
          seconds: roundSeconds(event.duration),
          deduplicated: event.deduplicated,
        },
        'uploaded and verified',
      );
      this.#watcher?.uploaded(localPath, version);
      this.emit('verified', {
        localPath,
        remotePath: event.upload.remotePath,
        size: version.size,
        sha256: event.sha256,
        deduplicated: event.deduplicated,
      });
      await this.#releaseDeferred(event.upload.id);
    }
    const watched = work.handed?.watched ?? (this.#watcher !== undefined && isInside(localPath, this.#watcher.root));
    const policy = this.config.afterUpload;
    if (!watched || !this.#watcher || policy === 'keep' || !this.#ledger) return;
    const intent = afterUploadIntent(
      policy,
      {
        path: localPath,
        remotePath: event.upload.remotePath,
        completesBag: work.handed?.completesBag ?? path.basename(localPath) === 'metadata.yaml',
        version,
        sha256: event.sha256,
      },
      { root: this.#watcher.root, moveTo: this.config.moveTo },
    );
    // Durable before the action: a crash or power loss before the action is durable is replayed at start-up.
    this.#ledger.addIntent(intent);
    await this.#carryOut(intent, false);
  }

  /**
   * Carries out an after-upload intent (see carryOut: only on the verified version, folders
   * fsynced), then forgets it. A failure leaves the intent for the next start.
   */
  async #carryOut(intent: AfterUploadIntent, replay: boolean): Promise<void> {
    const file = intent.localPath;
    let outcome: IntentOutcome;
    try {
      outcome = await carryOut(intent);
    } catch (error) {
      this.#logger.warn(
        { err: error, file, policy: intent.action },
        'after-upload policy failed; the file stays (tried again at the next start)',
      );
      return;
    }
    if (outcome === 'changed') {
      this.#logger.warn(
        { file, policy: intent.action },
        `not ${intent.action === 'delete' ? 'deleted' : 'moved'}: the file changed since the server verified it`,
      );
    } else if (outcome === 'done' || outcome === 'already') {
      this.#watcher?.forget(file);
      this.#logger.info(
        { file, policy: intent.action, ...(intent.destination ? { to: intent.destination } : {}) },
        replay ? 'after-upload policy completed (decided before a restart)' : 'after-upload policy applied',
      );
    }
    try {
      this.#ledger?.removeIntent(file);
    } catch (error) {
      // Done and durable; the intent is found done again at the next start.
      this.#logger.debug({ file, error: (error as Error).message }, 'could not forget an after-upload intent');
    }
  }

  #setProblem(error: UploadError): void {
    if (this.#problems.has(error.code)) return;
    const problem: AgentProblem = { code: error.code, message: error.message, since: new Date().toISOString() };
    this.#problems.set(error.code, problem);
    this.#logger.error(
      { code: error.code, reason: error.message },
      'the state disk is full: verified files are recorded and after-upload actions done once space is freed',
    );
    this.emit('problem', problem);
    this.#notify(undefined);
  }

  /** Tries the deferred work again after `delayMs` (default: the retry backoff). */
  #retryDeferredSoon(delayMs?: number): void {
    if (this.#stopping || (this.#deferredWork.length === 0 && this.#deferredReleases.size === 0)) return;
    clearTimeout(this.#retryTimer);
    const base = this.config.retryDelay * 1000 * 2 ** this.#retryFailures;
    const delay = delayMs ?? Math.min(base, this.config.retryMaxDelay * 1000);
    this.#retryTimer = setTimeout(() => void this.#track(this.#retryDeferred()), delay);
    this.#retryTimer.unref?.();
  }

  async #retryDeferred(): Promise<void> {
    const work = this.#deferredWork;
    this.#deferredWork = [];
    for (const [index, item] of work.entries()) {
      try {
        await this.#finishVerified(item);
      } catch (error) {
        this.#deferredWork = [...work.slice(index), ...this.#deferredWork];
        if (!isUploadError(error, 'STATE_DISK_FULL'))
          this.#logger.error({ err: error, file: item.localPath }, 'after-upload handling failed');
        break;
      }
    }
    const engineFull = this.#engine.problems.some((problem) => problem.code === 'STATE_DISK_FULL');
    if (!engineFull) {
      const releases = [...this.#deferredReleases.values()];
      this.#deferredReleases.clear();
      for (const file of releases) this.#onRelease(file);
    }
    if (this.#deferredWork.length === 0) {
      this.#retryFailures = 0;
      if (this.#problems.delete('STATE_DISK_FULL')) {
        this.#logger.info('the state disk takes writes again: verified files recorded');
        this.#notify(undefined);
      }
    } else {
      this.#retryFailures += 1;
      this.#retryDeferredSoon();
    }
  }

  #onFailed(event: FailedEvent): void {
    const localPath = this.#byId.get(event.upload.id) ?? event.upload.localPath;
    const handed = this.#handed.get(localPath);
    if (handed && handed.id !== event.upload.id) return;
    if (
      (event.code === 'FILE_CHANGED' || event.code === 'UNSAFE_LOCAL_PATH' || event.code === 'LOCAL_FILE_NOT_FOUND') &&
      this.#watcher?.phaseOf(localPath) !== undefined
    ) {
      // The watcher looks at the path again: a changed file is confirmed closed again, a link
      // swapped in is held back (and a real file back in its place goes again), a vanished one is forgotten.
      this.#logger.warn(
        { file: localPath, code: event.code, reason: event.reason },
        event.code === 'FILE_CHANGED'
          ? 'file kept changing during its upload; waiting until it is closed again'
          : 'file could not be read as it was judged; looking at it again',
      );
      this.#handed.delete(localPath);
      this.#byId.delete(event.upload.id);
      this.#watcher.changedDuringUpload(localPath);
      return;
    }
    // The engine logged the failure once; here it only goes to listeners.
    this.emit('failed', event);
    for (const entry of this.#deferred) {
      if (!entry.waitFor.has(event.upload.id)) continue;
      this.emit('held', {
        localPath: entry.file.path,
        remotePath: entry.file.remotePath,
        reason: `it goes after ${event.upload.remotePath}, which failed: ${event.reason}`,
      });
    }
  }

  /** Queues the deferred metadata.yaml files whose bags are now verified (`ids` collects their upload ids). */
  async #releaseDeferred(completedId: string | undefined, ids?: string[]): Promise<void> {
    for (const entry of [...this.#deferred]) {
      if (completedId !== undefined) entry.waitFor.delete(completedId);
      if (!entry.sealed || entry.waitFor.size > 0) continue;
      this.#deferred.splice(this.#deferred.indexOf(entry), 1);
      const id = await this.#add(entry.file.path, {
        remotePath: entry.file.remotePath,
        bagName: entry.file.bagName,
        priority: entry.priority,
        metadata: entry.metadata,
        replace: false,
        release: undefined,
      }).catch((error: unknown) => {
        this.#logger.error({ err: error, file: entry.file.path }, 'could not queue metadata.yaml');
        return undefined;
      });
      if (id) ids?.push(id);
    }
  }

  async #checkDisk(): Promise<void> {
    if (!this.#guard) return;
    const before = this.#guard.state.low;
    const state = await this.#guard.check();
    if (state.low && !before)
      this.#logger.warn(
        { free: state.free, minFreeSpace: this.config.minFreeSpace },
        'low disk space on the recording volume',
      );
    if (state.low !== before) this.#notify(undefined);
  }

  #scheduleDiskCheck(): void {
    clearTimeout(this.#guardTimer);
    if (!this.#guard || this.#stopping) return;
    this.#guardTimer = setTimeout(() => {
      void this.#checkDisk()
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'disk check failed'))
        .finally(() => this.#scheduleDiskCheck());
    }, this.config.diskCheckInterval * 1000);
    this.#guardTimer.unref?.();
  }

  #notify(upload: UploadSnapshot | undefined): void {
    this.#changed();
    for (const listener of this.#listeners) {
      try {
        listener(upload);
      } catch (error) {
        this.#logger.warn({ err: error }, 'status listener failed');
      }
    }
  }
}

function realPathOrResolved(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

function sameVersion(a: { size: number; mtimeMs: number } | undefined, b: { size: number; mtimeMs: number }): boolean {
  return a !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

function isInside(file: string, root: string): boolean {
  return (
    (path.resolve(file) + path.sep).startsWith(path.resolve(root) + path.sep) &&
    path.resolve(file) !== path.resolve(root)
  );
}

/** A path the watcher holds back and does not track (a link, a special file, an unusable name), as a status entry. */
function heldSnapshot(held: HeldBackFile): UploadSnapshot {
  return {
    ...waitingSnapshot({
      path: held.path,
      remotePath: held.remotePath,
      bagName: held.bagName,
      size: held.size,
      phase: 'open',
      reason: held.reason,
      firstSeen: held.since,
      heldBack: held.code,
    }),
    id: `held:${held.path}`,
  };
}

/**
 * A file the watcher has seen but not released, as a status entry; a held-back one carries its
 * reason as lastError, and one refused for its name is failed (INVALID_PATH) until renamed.
 */
function waitingSnapshot(file: WaitingFile): UploadSnapshot {
  const refused = file.phase === 'refused';
  return {
    id: `${refused ? 'refused' : 'waiting'}:${file.path}`,
    localPath: file.path,
    remotePath: file.remotePath,
    bagName: file.bagName,
    state: refused ? 'failed' : 'waiting_for_close',
    priority: 5,
    bytesSent: 0,
    bytesTotal: file.size,
    rate: 0,
    etaSeconds: undefined,
    attempt: 0,
    lastError: file.heldBack || refused ? `held back: ${file.reason}` : undefined,
    sha256: undefined,
    metadata: { waitingFor: file.reason, ...(file.heldBack ? { heldBack: file.heldBack } : {}) },
    queuedAt: new Date(file.firstSeen).toISOString(),
    startedAt: undefined,
    finishedAt: undefined,
    ...(refused ? { errorCode: 'INVALID_PATH' } : {}),
  };
}
