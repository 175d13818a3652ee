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
import type { FleetBus } from '../sessions/fleet-bus.js';
import type { BagRecord } from '../sessions/fleet-records.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { UploadStorage } from '../storage/upload-storage.js';
import { decodeDeltas, encodeDeltas, type FleetDeltas, type UploadDelta } from './fleet-deltas.js';
import { FleetOutbox } from './fleet-outbox.js';
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
  /** How this view hears of the other replicas' uploads and tells them of its own (see fleet-bus.ts). */
  bus: FleetBus;
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
  /** The replica that last reported progress (its bus id), or null for this process. */
  reportedBy: string | null;
  /** Replicas: progress received here not yet reported to the others. */
  unsent: boolean;
  unsentBytes: number;
  /** Whether the last report said it is completing. */
  reportedCompleting: boolean;
  /** Another replica said it is completing it. */
  completingElsewhere: boolean;
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
/** Replicas: a replica with nothing to report says so this often (a heartbeat: it is alive). */
const REPORT_AT_LEAST_MS = 5000;
/** Replicas: uploads last reported by a replica silent this long leave the view (it died). */
export const PEER_SILENT_MS = 15_000;
/** Ended sessions remembered, so a report that crossed the end never shows them again. */
const ENDED_KEPT = 10_000;
/**
 * Replicas: how often uploads another replica reported, quiet this long, are checked against the
 * database (a report of their end may have been lost while that replica's connection was down).
 */
export const CHECK_QUIET_MS = 30_000;

/**
 * The live state of the fleet for the dashboard and the metrics: robots (uploaders) with their
 * activity, the uploads in progress, recent completions and failures, and the bags (read from
 * the store). Fed by the upload events and by the HTTP layer (every request, every error
 * answer). Subscribers (the event streams of open pages) get at most one update a second with
 * what changed; a new subscriber starts from `snapshot()`. The per-uploader statistics (last
 * seen, bytes and files today) are saved to the session store every 15 s and at close.
 *
 * Replicas (a `bus` with peers) tell each other what they receive, a report a second: every
 * replica shows the uploads, robots, completions, failures and bag changes of all of them. An
 * upload last reported by a replica that fell silent (killed) leaves the view after
 * PEER_SILENT_MS; the next chunk another replica receives for it brings it back.
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
  /** Replicas only (undefined alone: nothing is recorded for no one). */
  readonly #outbox: FleetOutbox | undefined;
  /** When each other replica was last heard. */
  readonly #peers = new Map<string, number>();
  readonly #ended = new Set<string>();
  #reportedAt = 0;
  #checkedAt = Date.now();
  #reporting: Promise<void> | undefined;
  #reportFailedAt = 0;

  constructor(options: FleetViewOptions) {
    this.#o = options;
    const now = Date.now();
    for (const uploader of options.knownUploaders) this.#activity.set(uploader, UploaderActivity.fresh(uploader, now));
    this.#listen(options.events);
    if (options.bus.peers) {
      this.#outbox = new FleetOutbox();
      options.bus.onMessage((message, origin) => this.#receive(message, origin));
      options.bus.onResync(() => {
        this.#resync().catch((error: unknown) =>
          this.#o.log.warn({ event: 'fleet_resync_failed', err: error }, 'Could not read the open sessions again'),
        );
      });
    }
  }

  /** Loads the saved statistics, the open sessions and the recent files; starts the timers. */
  async start(): Promise<void> {
    const { store } = this.#o;
    for (const stats of await store.fleet.uploaderStats())
      this.#activity.set(stats.uploader, new UploaderActivity(stats));
    await this.#loadOpenSessions();
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
    if (this.#outbox) {
      // The goodbye lets the other replicas drop what this one reported at once; a database that
      // does not answer gets 2 s, then the others notice the silence instead.
      const farewell = (async () => {
        await this.#reporting;
        await this.#report(Date.now(), true);
      })();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([farewell, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
    }
    await this.#saveStats();
  }

  // ---- what the HTTP layer reports -------------------------------------------------------------

  /** A request from `uploader` (every authenticated request; anonymous ones on an open server). */
  seen(uploader: string): void {
    const now = Date.now();
    this.#activityOf(uploader).seen(now);
    this.#outbox?.seen(uploader, now);
  }

  /** An error answer. */
  failed(failure: ObservedFailure): void {
    const now = Date.now();
    if (failure.uploader !== null) this.#activityOf(failure.uploader).failed(now);
    this.#outbox?.failed(failure.uploader, failure.code, failure.status, failure.message, failure.route, now);
    this.#addFailure({ ...failure, id: 0, at: new Date(now).toISOString() });
  }

  #addFailure(failure: FailureView): void {
    const view: FailureView = { ...failure, id: this.#nextFailureId++ };
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

  /** Uploads in progress last reported by this process (with replicas, each counts its own). */
  get openUploads(): number {
    let count = 0;
    for (const upload of this.#uploads.values()) if (upload.reportedBy === null) count += 1;
    return count;
  }

  /** Free bytes of the storage at the last measurement (every 10 s), or null. */
  get freeBytes(): number | null {
    return this.#freeBytes;
  }

  // ---- internals -------------------------------------------------------------------------------

  #listen(events: UploadEventBus): void {
    events.on('session-created', (event) => {
      const now = Date.now();
      this.#track(event.sessionId, event.uploader, event.path, event.size, 0, now, now, null).unsent = true;
    });
    events.on('chunk-stored', (event) => {
      const now = Date.now();
      this.#activityOf(event.uploader).received(event.bytes, now);
      this.#outbox?.received(event.uploader, event.bytes, now);
      // Replicas: the session may have been created at another replica, not heard of yet.
      const upload =
        this.#uploads.get(event.sessionId) ??
        (this.#outbox && !this.#ended.has(event.sessionId)
          ? this.#track(event.sessionId, event.uploader, event.path, event.size, 0, now, now, null)
          : undefined);
      if (!upload) return;
      upload.receivedBytes = Math.max(upload.receivedBytes, event.receivedBytes);
      upload.window.add(event.bytes, now);
      upload.lastChunkAt = now;
      upload.reportedBy = null;
      upload.unsent = true;
      upload.unsentBytes += event.bytes;
    });
    events.on('file-completed', (event) => {
      if (event.sessionId !== null) this.#end(event.sessionId, true);
      if (event.deduplicated) return;
      const now = Date.now();
      const activity = this.#activityOf(event.uploader);
      // A whole file arrives in one request: no chunk events count its bytes.
      if (event.sessionId === null) {
        activity.received(event.size, now);
        this.#outbox?.received(event.uploader, event.size, now);
      }
      activity.completedFile(now);
      const completedAt = Date.parse(event.completedAt);
      this.#outbox?.completed([event.uploader, event.path, event.size, event.sha256, completedAt]);
      this.#addCompletion(completionOf(event.uploader, event.path, event, completedAt));
    });
    events.on('session-failed', (event) => {
      if (event.ended) this.#end(event.sessionId, true);
    });
    events.on('session-cancelled', (event) => this.#end(event.sessionId, true));
    events.on('session-expired', (event) => this.#end(event.sessionId, true));
    events.on('bag-updated', (event) => {
      this.#dirtyBags.add(bagKey(event.uploader, event.bag));
      this.#outbox?.bagChanged(event.uploader, event.bag);
    });
  }

  #addCompletion(view: CompletionView): void {
    this.#completions.unshift(view);
    if (this.#completions.length > RECENT_KEPT) this.#completions.length = RECENT_KEPT;
    this.#newCompletions.push(view);
    if (this.#newCompletions.length > RECENT_KEPT) this.#newCompletions.shift();
  }

  #track(
    id: string,
    uploader: string,
    path: string,
    size: number,
    receivedBytes: number,
    startedAt: number,
    lastChunkAt: number,
    reportedBy: string | null,
  ): LiveUpload {
    const upload: LiveUpload = {
      id,
      uploader,
      path,
      size,
      receivedBytes,
      window: new RateWindow(10),
      startedAt,
      lastChunkAt,
      reportedBy,
      unsent: false,
      unsentBytes: 0,
      reportedCompleting: false,
      completingElsewhere: false,
    };
    this.#uploads.set(id, upload);
    this.#removed.delete(id);
    return upload;
  }

  /** A session ended (for good: `final`, it is remembered so that no late report shows it again). */
  #end(sessionId: string, final: boolean): void {
    if (this.#uploads.delete(sessionId)) this.#removed.add(sessionId);
    if (!final || !this.#outbox) return;
    this.#outbox.ended(sessionId);
    this.#remember(sessionId);
  }

  #remember(sessionId: string): void {
    this.#ended.add(sessionId);
    if (this.#ended.size > ENDED_KEPT) {
      const oldest = this.#ended.values().next();
      if (!oldest.done) this.#ended.delete(oldest.value);
    }
  }

  async #loadOpenSessions(): Promise<Set<string>> {
    const open = new Set<string>();
    for (const session of await this.#o.store.fleet.openSessionSummaries()) {
      open.add(session.id);
      if (this.#uploads.has(session.id) || this.#ended.has(session.id)) continue;
      this.#track(
        session.id,
        session.uploader,
        session.path,
        session.size,
        session.receivedBytes,
        session.createdAt,
        session.updatedAt,
        null,
      );
    }
    return open;
  }

  /** Replicas: the bus was down; what ended meanwhile is read from the database. */
  async #resync(): Promise<void> {
    this.#pruneEnded(await this.#loadOpenSessions());
  }

  async #checkQuiet(quietBefore: number): Promise<void> {
    try {
      const open = await this.#o.store.fleet.openSessionSummaries();
      this.#pruneEnded(new Set(open.map((session) => session.id)), quietBefore);
    } catch (error) {
      this.#o.log.warn({ event: 'fleet_check_failed', err: error }, 'Could not read the open sessions');
    }
  }

  /**
   * Drops the uploads other replicas reported whose session is not open in the database (`open`),
   * of those with no chunk since `quietBefore` when given (a newer one may be younger than the
   * query). Not remembered as ended: a report that comes later brings one back.
   */
  #pruneEnded(open: ReadonlySet<string>, quietBefore = Number.POSITIVE_INFINITY): void {
    for (const upload of [...this.#uploads.values()])
      if (upload.reportedBy !== null && upload.lastChunkAt < quietBefore && !open.has(upload.id))
        this.#end(upload.id, false);
  }

  // ---- replicas --------------------------------------------------------------------------------

  /** Tells the other replicas what changed here since the last report (a heartbeat when nothing did). */
  async #report(now: number, closing = false): Promise<void> {
    const outbox = this.#outbox;
    if (!outbox) return;
    const completing = this.#o.completingIds();
    const uploads: UploadDelta[] = [];
    for (const upload of this.#uploads.values()) {
      if (upload.reportedBy !== null) continue;
      const isCompleting = completing.has(upload.id);
      if (!upload.unsent && isCompleting === upload.reportedCompleting) continue;
      uploads.push([
        upload.id,
        upload.uploader,
        upload.path,
        upload.size,
        upload.receivedBytes,
        upload.unsentBytes,
        upload.startedAt,
        upload.lastChunkAt,
        isCompleting ? 1 : 0,
      ]);
      upload.unsent = false;
      upload.unsentBytes = 0;
      upload.reportedCompleting = isCompleting;
    }
    const deltas = outbox.take(uploads);
    if (closing) deltas.bye = 1;
    if (Object.keys(deltas).length === 0 && now - this.#reportedAt < REPORT_AT_LEAST_MS) return;
    this.#reportedAt = now;
    const { bus } = this.#o;
    const { messages, dropped } = encodeDeltas(deltas, bus.maxMessageBytes);
    if (dropped > 0) this.#o.log.debug({ event: 'fleet_report_item_dropped', dropped }, 'An item too long to report');
    try {
      for (const message of messages) await bus.publish(message);
    } catch (error) {
      // One warning a minute: the database being away is reported by /ready and the requests.
      if (now - this.#reportFailedAt > 60_000) {
        this.#reportFailedAt = now;
        this.#o.log.warn({ event: 'fleet_report_failed', err: error }, 'Could not tell the other replicas');
      }
    }
  }

  #receive(message: string, origin: string): void {
    const deltas = decodeDeltas(message);
    if (!deltas) return;
    const now = Date.now();
    this.#peers.set(origin, now);
    this.#apply(deltas, origin, now);
  }

  #apply(deltas: FleetDeltas, origin: string, now: number): void {
    for (const id of deltas.e ?? []) {
      this.#remember(id);
      this.#end(id, false);
    }
    for (const [id, uploader, path, size, received, bytes, startedAt, lastChunkAt, completing] of deltas.u ?? []) {
      if (this.#ended.has(id)) continue;
      const upload =
        this.#uploads.get(id) ?? this.#track(id, uploader, path, size, received, startedAt, lastChunkAt, origin);
      upload.receivedBytes = Math.max(upload.receivedBytes, received);
      upload.lastChunkAt = Math.max(upload.lastChunkAt, lastChunkAt);
      upload.window.add(bytes, now);
      upload.reportedBy = origin;
      upload.completingElsewhere = completing === 1;
    }
    for (const [uploader, lastSeen, bytes, files, errors] of deltas.r ?? [])
      this.#activityOf(uploader).merge({ lastSeen, bytes, files, errors }, now);
    for (const [uploader, path, size, sha256, completedAt] of deltas.c ?? [])
      this.#addCompletion(completionOf(uploader, path, { size, sha256 }, completedAt));
    for (const [uploader, code, status, message, route, at] of deltas.f ?? [])
      this.#addFailure({ id: 0, at: new Date(at).toISOString(), uploader, code, status, message, route });
    for (const [uploader, bag] of deltas.b ?? []) this.#dirtyBags.add(bagKey(uploader, bag));
    if (deltas.bye) this.#forget(origin);
  }

  /** A replica that said goodbye or fell silent: the uploads it last reported leave the view. */
  #forget(origin: string): void {
    this.#peers.delete(origin);
    for (const upload of [...this.#uploads.values()]) if (upload.reportedBy === origin) this.#end(upload.id, false);
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
      if (this.#outbox) {
        // Not awaited: a database that hangs must not stop the pages' updates. A report still on
        // its way holds the next one back (the outbox keeps collecting meanwhile).
        this.#reporting ??= this.#report(now).finally(() => {
          this.#reporting = undefined;
        });
        for (const [origin, heard] of this.#peers) if (now - heard > PEER_SILENT_MS) this.#forget(origin);
        if (now - this.#checkedAt > CHECK_QUIET_MS) {
          this.#checkedAt = now;
          const quiet = [...this.#uploads.values()].some(
            (upload) => upload.reportedBy !== null && now - upload.lastChunkAt > CHECK_QUIET_MS,
          );
          if (quiet) await this.#checkQuiet(now - CHECK_QUIET_MS);
        }
      }
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
    const state =
      completing.has(upload.id) || upload.completingElsewhere
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
