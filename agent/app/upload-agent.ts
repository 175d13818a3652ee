import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { UploadError, isUploadError } from '../../common/errors/upload-error.js';
import { present } from '../../common/errors/present.js';
import { createLogger } from '../../common/program/create-logger.js';
import type { AgentController, AgentStatus, EnqueueResult } from './agent-controller.js';
import { agentOptionSpecs, agentOptions, type AgentConfig } from './agent-options.js';
import { checkStateDir, checkWatchDir } from './check-dirs.js';
import { engineOptionSpecs } from '../engine/engine-options.js';
import { NetworkManager } from '../engine/network-manager.js';
import type { CompletedEvent, FailedEvent, UploadSnapshot } from '../engine/upload-events.js';
import { applyAfterUpload, moveTarget } from '../watcher/after-upload.js';
import { listForUpload, type ListedFile } from '../watcher/bag-listing.js';
import { BagWatcher, type ReleasedFile, type WaitingFile } from '../watcher/bag-watcher.js';
import { DiskGuard } from '../watcher/disk-guard.js';
import { UploadLedger } from '../watcher/upload-ledger.js';

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

/** A bag's metadata.yaml that cannot go yet, because another file of its bag failed. */
export interface HeldFile {
  localPath: string;
  remotePath: string;
  reason: string;
}

export interface UploadAgentEvents {
  verified: [VerifiedFile];
  /** metadata.yaml of an explicitly enqueued bag waits for a file that failed (retryFailed() may unblock it). */
  held: [HeldFile];
  /** The engine gave up on a file (a permanent error); retryFailed() puts it back. */
  failed: [FailedEvent];
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

const ENGINE_KEYS = new Set(Object.keys(engineOptionSpecs));
const LIVE_WATCHER_KEYS = new Set([
  'settleTime',
  'quietPeriod',
  'rescanInterval',
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
  /** The agent's own work in flight: enqueues, hand-overs to the engine, completions being checked. */
  #busy = 0;
  readonly #unbusy: (() => void)[] = [];

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
    checkStateDir(stateDir);
    let watchRoot: string | undefined;
    if (this.config.watchDir) watchRoot = checkWatchDir(this.config.watchDir, this.config.createWatchDir);
    this.#watchRoot = watchRoot;
    await this.#engine.start();
    try {
      const ledger = new UploadLedger(stateDir);
      this.#ledger = ledger;
      for (const upload of this.#engine.status()) {
        if (upload.state !== 'completed' && upload.state !== 'failed') this.#adopt(upload);
      }
      if (watchRoot) await this.#startWatching(watchRoot, ledger);
    } catch (error) {
      await this.#engine.stop();
      this.#ledger?.close();
      throw error;
    }
    this.#started = true;
  }

  async #startWatching(root: string, ledger: UploadLedger): Promise<void> {
    const moveDir =
      this.config.afterUpload === 'move' || this.config.moveTo ? moveTarget(root, this.config.moveTo) : undefined;
    const watcher = new BagWatcher({
      root,
      settleTime: this.config.settleTime,
      quietPeriod: this.config.quietPeriod,
      rescanInterval: this.config.rescanInterval,
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
    watcher.on('withdraw', (file) => void this.#withdraw(file.path, file.reason));
    watcher.on('waiting', (file) => this.#notify(waitingSnapshot(file)));
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
    const uploads = [...waiting, ...this.#engine.status()];
    const disk = this.#guard?.state;
    return {
      online: this.#engine.online,
      paused: this.#engine.paused,
      bandwidthLimit: this.#engine.bandwidthLimit,
      uploads,
      bytesPending: this.#engine.bytesPending + waiting.reduce((sum, upload) => sum + upload.bytesTotal, 0),
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
    let refusal: string | undefined;
    for (const [index, file] of batch.entries()) {
      const outcome = present(added[index], 'the outcome of a queued file');
      if (outcome.status === 'rejected') {
        refusal ??= (outcome.reason as Error).message;
        continue;
      }
      const id = outcome.value;
      if (!id) continue;
      ids.push(id);
      for (const entry of entries) if (file.remotePath.startsWith(entry.dir)) entry.waitFor.add(id);
    }
    if (refusal !== undefined) {
      for (const entry of entries) this.#deferred.splice(this.#deferred.indexOf(entry), 1);
      return { accepted: ids.length > 0, message: refusal, uploadIds: ids };
    }
    for (const entry of entries) entry.sealed = true;
    const waiting = entries.filter((entry) => entry.waitFor.size > 0).length;
    await this.#releaseDeferred(undefined, ids);
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
    if (name === 'settleTime' || name === 'quietPeriod' || name === 'rescanInterval')
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

  /** Stops watching, then lets the engine drain for its stopTimeout and persist its state. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#guardTimer);
      await this.#watcher?.stop();
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

  #onRelease(file: ReleasedFile): void {
    void this.#add(file.path, {
      remotePath: file.remotePath,
      bagName: file.bagName,
      priority: undefined,
      metadata: undefined,
      replace: file.replace,
      release: file,
    }).catch((error: unknown) => {
      this.#logger.error({ err: error, file: file.path }, 'could not queue a closed file');
    });
  }

  async #add(localPath: string, options: AddOptions): Promise<string | undefined> {
    const [settled] = await this.#addMany([{ localPath, options }]);
    const outcome = present(settled, 'the outcome of a queued file');
    if (outcome.status === 'rejected') throw outcome.reason;
    return outcome.value;
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
    const batch = this.#track(
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
    for (const [index, handed] of handedList.entries()) {
      const { localPath } = present(items[index], 'the file handed to the engine');
      handed.adding = batch.then((results) => {
        const result = present(results[index], "the engine's answer for a handed file");
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
    const now = await versionNow(localPath);
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
    this.#ledger?.record({
      localPath,
      remotePath: event.upload.remotePath,
      size: now.size,
      mtimeMs: now.mtimeMs,
      ino: now.ino,
      sha256: event.sha256,
      verifiedAt: Date.now(),
    });
    this.#logger.debug(
      {
        file: localPath,
        remotePath: event.upload.remotePath,
        sha256: event.sha256,
        seconds: Math.round(event.duration * 10) / 10,
        deduplicated: event.deduplicated,
      },
      'uploaded and verified',
    );
    this.#watcher?.uploaded(localPath, now);
    this.emit('verified', {
      localPath,
      remotePath: event.upload.remotePath,
      size: now.size,
      sha256: event.sha256,
      deduplicated: event.deduplicated,
    });
    await this.#releaseDeferred(event.upload.id);
    const watched = handed?.watched ?? (this.#watcher !== undefined && isInside(localPath, this.#watcher.root));
    if (watched && this.#watcher && this.config.afterUpload !== 'keep') {
      try {
        const where = await applyAfterUpload(
          this.config.afterUpload,
          {
            path: localPath,
            remotePath: event.upload.remotePath,
            completesBag: handed?.completesBag ?? path.basename(localPath) === 'metadata.yaml',
          },
          { root: this.#watcher.root, moveTo: this.config.moveTo },
        );
        this.#watcher.forget(localPath);
        this.#logger.info(
          { file: localPath, policy: this.config.afterUpload, ...(where && where !== localPath ? { to: where } : {}) },
          'after-upload policy applied',
        );
      } catch (error) {
        this.#logger.warn({ err: error, file: localPath }, 'after-upload policy failed; the file stays');
      }
    }
  }

  #onFailed(event: FailedEvent): void {
    const localPath = this.#byId.get(event.upload.id) ?? event.upload.localPath;
    const handed = this.#handed.get(localPath);
    if (handed && handed.id !== event.upload.id) return;
    if (event.code === 'FILE_CHANGED' && this.#watcher?.phaseOf(localPath) !== undefined) {
      this.#logger.warn({ file: localPath }, 'file kept changing during its upload; waiting until it is closed again');
      this.#handed.delete(localPath);
      this.#byId.delete(event.upload.id);
      this.#watcher.changedDuringUpload(localPath);
      return;
    }
    this.#logger.error({ file: localPath, code: event.code, reason: event.reason }, 'upload failed');
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

/** The file's size, mtime and inode now; undefined when it is gone. */
async function versionNow(localPath: string): Promise<{ size: number; mtimeMs: number; ino: number } | undefined> {
  try {
    const info = await stat(localPath);
    return { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };
  } catch {
    return undefined;
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

/** A file the watcher has seen but not released, as a status entry. */
function waitingSnapshot(file: WaitingFile): UploadSnapshot {
  return {
    id: `waiting:${file.path}`,
    localPath: file.path,
    remotePath: file.remotePath,
    bagName: file.bagName,
    state: 'waiting_for_close',
    priority: 5,
    bytesSent: 0,
    bytesTotal: file.size,
    rate: 0,
    etaSeconds: undefined,
    attempt: 0,
    lastError: undefined,
    sha256: undefined,
    metadata: { waitingFor: file.reason },
    queuedAt: new Date(file.firstSeen).toISOString(),
    startedAt: undefined,
    finishedAt: undefined,
  };
}
