import {
  MISSING_SHOWN,
  ONLINE_WINDOW_SECONDS,
  SNAPSHOT_BAGS,
  STALLED_AFTER_SECONDS,
  type BagView,
  type CompletionView,
  type FailureView,
  type FleetSnapshot,
  type FleetUpdate,
  type RobotView,
  type ServerView,
  type UploadView,
} from '../../common/protocol/fleet-views.js';
import { packageVersion } from '../../common/program/package-version.js';
import type { UploadEventBus } from '../events/upload-events.js';
import type { Logger } from '../logging/logger.js';
import type { BagRecord } from '../sessions/fleet-records.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import { RateWindow } from './rate-window.js';
import { UploaderActivity } from './uploader-activity.js';

export interface FleetViewOptions {
  store: SessionStore;
  storage: UploadStorage;
  events: UploadEventBus;
  log: Logger;
  /** Uploaders that have a token: listed even before they are first seen. */
  knownUploaders: readonly string[];
  /** Ids of the sessions being completed right now (the runtime registry knows). */
  completingIds: () => ReadonlySet<string>;
}

/** An upload in progress, as the view tracks it. */
interface LiveUpload {
  id: string;
  uploader: string;
  path: string;
  size: number;
  receivedBytes: number;
  window: RateWindow;
  startedAt: number;
  lastChunkAt: number;
}

/** An error answer, as the HTTP layer reports it. */
export interface ObservedFailure {
  uploader: string | null;
  code: string;
  status: number;
  message: string;
  route: string;
}

const TICK_MS = 1000;
const SAVE_STATS_MS = 15_000;
const FREE_SPACE_MS = 10_000;
const RECENT_KEPT = 50;
/** Failures sent per update at most (a flood of refusals is summed up by the counters, not listed). */
const FAILURES_PER_UPDATE = 20;
/** How long the bags part of a snapshot is reused (many pages reconnecting at once cost one query). */
const BAGS_CACHE_MS = 2000;

/**
 * The live state of the fleet for the dashboard and the metrics: robots (uploaders) with their
 * activity, the uploads in progress, recent completions and failures, and the bags (read from
 * the store). Fed by the upload events and by the HTTP layer (every request, every error
 * answer). Subscribers (the event streams of open pages) get at most one update a second with
 * what changed; a new subscriber starts from `snapshot()`. The per-uploader statistics (last
 * seen, bytes and files today) are saved to the session store every 15 s and at close.
 *
 * The state is this server process's: with several replicas, each shows what it received.
 */
export class FleetView {
  readonly #o: FleetViewOptions;
  readonly #activity = new Map<string, UploaderActivity>();
  readonly #uploads = new Map<string, LiveUpload>();
  readonly #completions: CompletionView[] = [];
  readonly #failures: FailureView[] = [];
  readonly #subscribers = new Set<(update: FleetUpdate) => void>();
  readonly #startedAt = Date.now();
  #nextFailureId = 1;
  #freeBytes: number | null = null;
  #timers: NodeJS.Timeout[] = [];
  /** What the last update said of each robot and upload (JSON), to send only what changed. */
  readonly #sentRobots = new Map<string, string>();
  readonly #sentUploads = new Map<string, string>();
  readonly #removed = new Set<string>();
  readonly #dirtyBags = new Set<string>();
  #newCompletions: CompletionView[] = [];
  #newFailures: FailureView[] = [];
  #bagsCache: { at: number; bags: Promise<{ views: BagView[]; counts: ServerView['bags'] }> } | undefined;
  #bagCounts: ServerView['bags'] = { complete: 0, incomplete: 0 };
  #ticking = false;

  constructor(options: FleetViewOptions) {
    this.#o = options;
    const now = Date.now();
    for (const uploader of options.knownUploaders) this.#activity.set(uploader, UploaderActivity.fresh(uploader, now));
    this.#listen(options.events);
  }

  /** Loads the saved statistics, the open sessions and the recent files; starts the timers. */
  async start(): Promise<void> {
    const { store } = this.#o;
    for (const stats of await store.fleet.uploaderStats())
      this.#activity.set(stats.uploader, new UploaderActivity(stats));
    for (const session of await store.fleet.openSessionSummaries()) {
      if (this.#uploads.has(session.id)) continue;
      this.#uploads.set(session.id, {
        id: session.id,
        uploader: session.uploader,
        path: session.path,
        size: session.size,
        receivedBytes: session.receivedBytes,
        window: new RateWindow(10),
        startedAt: session.createdAt,
        lastChunkAt: session.updatedAt,
      });
    }
    const recent = await store.fleet.recentFiles(RECENT_KEPT);
    this.#completions.push(...recent.map((file) => completionOf(file.uploader, file.path, file, file.completedAt)));
    this.#bagCounts = countsOf(await store.fleet.bagCounts());
    await this.#measureFreeSpace();
    const every = (ms: number, work: () => Promise<void> | void): void => {
      const timer = setInterval(() => {
        Promise.resolve()
          .then(work)
          .catch((error: unknown) => this.#o.log.warn({ event: 'fleet_view_failed', err: error }, 'Fleet view'));
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(TICK_MS, () => this.#tick());
    every(SAVE_STATS_MS, () => this.#saveStats());
    every(FREE_SPACE_MS, () => this.#measureFreeSpace());
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#subscribers.clear();
    await this.#saveStats();
  }

  // ---- what the HTTP layer reports -------------------------------------------------------------

  /** A request from `uploader` (every authenticated request; anonymous ones on an open server). */
  seen(uploader: string): void {
    this.#activityOf(uploader).seen(Date.now());
  }

  /** An error answer. */
  failed(failure: ObservedFailure): void {
    const now = Date.now();
    if (failure.uploader !== null) this.#activityOf(failure.uploader).failed(now);
    const view: FailureView = { id: this.#nextFailureId++, at: new Date(now).toISOString(), ...failure };
    this.#failures.unshift(view);
    if (this.#failures.length > RECENT_KEPT) this.#failures.length = RECENT_KEPT;
    if (this.#newFailures.length < FAILURES_PER_UPDATE) this.#newFailures.push(view);
  }

  // ---- what readers see ------------------------------------------------------------------------

  subscribe(listener: (update: FleetUpdate) => void): () => void {
    this.#subscribers.add(listener);
    return () => this.#subscribers.delete(listener);
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  async snapshot(viewer: string): Promise<FleetSnapshot> {
    const now = Date.now();
    const { views, counts } = await this.#bags(now);
    return {
      type: 'snapshot',
      at: new Date(now).toISOString(),
      viewer,
      server: { ...this.#serverView(now), bags: counts },
      robots: this.robots(now),
      uploads: [...this.#uploads.values()].map((upload) => this.#uploadView(upload, now, this.#o.completingIds())),
      bags: views,
      completions: [...this.#completions],
      failures: [...this.#failures],
    };
  }

  robots(now = Date.now()): RobotView[] {
    const uploading = new Map<string, number>();
    for (const upload of this.#uploads.values()) {
      uploading.set(upload.uploader, (uploading.get(upload.uploader) ?? 0) + 1);
    }
    return [...this.#activity.values()]
      .map((activity) => robotView(activity, now, uploading.get(activity.stats.uploader) ?? 0))
      .sort((a, b) => a.uploader.localeCompare(b.uploader));
  }

  /** Every uploader's statistics, for the metrics. */
  activities(): readonly UploaderActivity[] {
    return [...this.#activity.values()];
  }

  get openUploads(): number {
    return this.#uploads.size;
  }

  /** Free bytes of the storage at the last measurement (every 10 s), or null. */
  get freeBytes(): number | null {
    return this.#freeBytes;
  }

  // ---- internals -------------------------------------------------------------------------------

  #listen(events: UploadEventBus): void {
    events.on('session-created', (event) => {
      const now = Date.now();
      this.#uploads.set(event.sessionId, {
        id: event.sessionId,
        uploader: event.uploader,
        path: event.path,
        size: event.size,
        receivedBytes: 0,
        window: new RateWindow(10),
        startedAt: now,
        lastChunkAt: now,
      });
      this.#removed.delete(event.sessionId);
    });
    events.on('chunk-stored', (event) => {
      const now = Date.now();
      this.#activityOf(event.uploader).received(event.bytes, now);
      const upload = this.#uploads.get(event.sessionId);
      if (!upload) return;
      upload.receivedBytes = event.receivedBytes;
      upload.window.add(event.bytes, now);
      upload.lastChunkAt = now;
    });
    events.on('file-completed', (event) => {
      if (event.sessionId !== null) this.#end(event.sessionId);
      if (event.deduplicated) return;
      const now = Date.now();
      const activity = this.#activityOf(event.uploader);
      // A whole file arrives in one request: no chunk events count its bytes.
      if (event.sessionId === null) activity.received(event.size, now);
      activity.completedFile(now);
      const view = completionOf(event.uploader, event.path, event, Date.parse(event.completedAt));
      this.#completions.unshift(view);
      if (this.#completions.length > RECENT_KEPT) this.#completions.length = RECENT_KEPT;
      this.#newCompletions.push(view);
      if (this.#newCompletions.length > RECENT_KEPT) this.#newCompletions.shift();
    });
    events.on('session-failed', (event) => {
      if (event.ended) this.#end(event.sessionId);
    });
    events.on('session-cancelled', (event) => this.#end(event.sessionId));
    events.on('session-expired', (event) => this.#end(event.sessionId));
    events.on('bag-updated', (event) => this.#dirtyBags.add(bagKey(event.uploader, event.bag)));
  }

  #end(sessionId: string): void {
    if (this.#uploads.delete(sessionId)) this.#removed.add(sessionId);
  }

  #activityOf(uploader: string): UploaderActivity {
    let activity = this.#activity.get(uploader);
    if (!activity) {
      activity = UploaderActivity.fresh(uploader, Date.now());
      this.#activity.set(uploader, activity);
    }
    return activity;
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const now = Date.now();
      const robots = this.#changed(this.robots(now), this.#sentRobots, (robot) => robot.uploader);
      const completing = this.#o.completingIds();
      const uploads = this.#changed(
        [...this.#uploads.values()].map((upload) => this.#uploadView(upload, now, completing)),
        this.#sentUploads,
        (upload) => upload.id,
      );
      const removed = [...this.#removed];
      this.#removed.clear();
      for (const id of removed) this.#sentUploads.delete(id);
      const bags = await this.#changedBags();
      if (bags.length > 0) this.#bagCounts = countsOf(await this.#o.store.fleet.bagCounts());
      const update: FleetUpdate = {
        type: 'update',
        at: new Date(now).toISOString(),
        server: { ...this.#serverView(now), bags: this.#bagCounts },
        robots,
        uploads,
        removedUploads: removed,
        bags,
        completions: this.#newCompletions,
        failures: this.#newFailures,
      };
      this.#newCompletions = [];
      this.#newFailures = [];
      for (const listener of this.#subscribers) {
        try {
          listener(update);
        } catch (error) {
          this.#o.log.warn({ event: 'fleet_subscriber_failed', err: error }, 'A fleet view subscriber failed');
        }
      }
    } finally {
      this.#ticking = false;
    }
  }

  /** The items whose view differs from what was last sent (all of them are remembered). */
  #changed<T>(items: T[], sent: Map<string, string>, key: (item: T) => string): T[] {
    const changed: T[] = [];
    for (const item of items) {
      const text = JSON.stringify(item);
      const id = key(item);
      if (sent.get(id) === text) continue;
      sent.set(id, text);
      changed.push(item);
    }
    return changed;
  }

  async #changedBags(): Promise<BagView[]> {
    if (this.#dirtyBags.size === 0) return [];
    const keys = [...this.#dirtyBags];
    this.#dirtyBags.clear();
    this.#bagsCache = undefined;
    const views: BagView[] = [];
    for (const key of keys) {
      const [uploader = '', folder = ''] = key.split('\0');
      const bag = await this.#o.store.fleet.getBag(uploader, folder);
      if (bag) views.push(bagView(bag));
    }
    return views;
  }

  #bags(now: number): Promise<{ views: BagView[]; counts: ServerView['bags'] }> {
    if (!this.#bagsCache || now - this.#bagsCache.at > BAGS_CACHE_MS) {
      const bags = (async () => {
        const [records, counts] = await Promise.all([
          this.#o.store.fleet.listBags({ limit: SNAPSHOT_BAGS }),
          this.#o.store.fleet.bagCounts(),
        ]);
        return { views: records.map(bagView), counts: countsOf(counts) };
      })();
      bags.catch(() => {
        this.#bagsCache = undefined;
      });
      this.#bagsCache = { at: now, bags };
    }
    return this.#bagsCache.bags;
  }

  #uploadView(upload: LiveUpload, now: number, completing: ReadonlySet<string>): UploadView {
    const rate = upload.window.rate(now);
    const left = Math.max(0, upload.size - upload.receivedBytes);
    const state = completing.has(upload.id)
      ? 'completing'
      : now - upload.lastChunkAt > STALLED_AFTER_SECONDS * 1000
        ? 'stalled'
        : 'receiving';
    return {
      id: upload.id,
      uploader: upload.uploader,
      path: upload.path,
      size: upload.size,
      receivedBytes: upload.receivedBytes,
      rate,
      etaSeconds: rate > 0 ? Math.ceil(left / rate) : null,
      state,
      startedAt: new Date(upload.startedAt).toISOString(),
      updatedAt: new Date(upload.lastChunkAt).toISOString(),
    };
  }

  #serverView(now: number): Omit<ServerView, 'bags'> {
    return {
      version: packageVersion(),
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.floor((now - this.#startedAt) / 1000),
      freeBytes: this.#freeBytes,
    };
  }

  async #measureFreeSpace(): Promise<void> {
    if (!this.#o.storage.freeSpace) return;
    try {
      this.#freeBytes = await this.#o.storage.freeSpace();
    } catch (error) {
      this.#freeBytes = null;
      this.#o.log.warn({ event: 'free_space_failed', err: error }, 'Could not measure the free disk space');
    }
  }

  async #saveStats(): Promise<void> {
    const dirty = [...this.#activity.values()].filter((activity) => activity.dirty);
    if (dirty.length === 0) return;
    for (const activity of dirty) activity.dirty = false;
    try {
      await this.#o.store.fleet.saveUploaderStats(dirty.map((activity) => ({ ...activity.stats })));
    } catch (error) {
      for (const activity of dirty) activity.dirty = true;
      throw error;
    }
  }
}

function bagKey(uploader: string, folder: string): string {
  return `${uploader}\0${folder}`;
}

function countsOf(counts: { complete: number; incomplete: number }): ServerView['bags'] {
  return { complete: counts.complete, incomplete: counts.incomplete };
}

function robotView(activity: UploaderActivity, now: number, uploading: number): RobotView {
  const { stats } = activity;
  const today = activity.today(now);
  return {
    uploader: stats.uploader,
    online: stats.lastSeen !== null && now - stats.lastSeen <= ONLINE_WINDOW_SECONDS * 1000,
    lastSeen: stats.lastSeen === null ? null : new Date(stats.lastSeen).toISOString(),
    bytesToday: today.bytes,
    filesToday: today.files,
    rate: activity.window.rate(now),
    errorsLastHour: activity.errorsLastHour(now),
    uploading,
  };
}

function completionOf(
  uploader: string,
  path: string,
  file: { size: number; sha256: string },
  completedAt: number,
): CompletionView {
  return { uploader, path, size: file.size, sha256: file.sha256, completedAt: new Date(completedAt).toISOString() };
}

/** The dashboard's view of a bag record. */
export function bagView(bag: BagRecord): BagView {
  const expected = bag.expected?.length ?? null;
  return {
    uploader: bag.uploader,
    bag: bag.folder,
    complete: bag.complete,
    hasMetadata: bag.expected !== null,
    expected,
    arrived: expected === null ? 0 : expected - bag.missing.length,
    missing: bag.missing.slice(0, MISSING_SHOWN),
    missingCount: bag.missing.length,
    files: bag.files,
    bytes: bag.bytes,
    metadataError: bag.metadataError,
    completedAt: bag.completedAt === null ? null : new Date(bag.completedAt).toISOString(),
    updatedAt: new Date(bag.updatedAt).toISOString(),
  };
}
