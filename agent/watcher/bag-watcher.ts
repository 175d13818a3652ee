import { EventEmitter } from 'node:events';
import { realpathSync, type Dirent, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { BinaryHeap } from '../../common/collections/binary-heap.js';
import { formatDuration } from '../../common/config/units.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { lstatBelow, type PathVerdict } from '../../common/files/no-follow.js';
import { escapeRefusedCharacters, normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { unusableName } from './bag-listing.js';
import { classifyFile, createFileFilter, isNeverUploaded, type FileFilter, type FileRole } from './bag-files.js';
import { closingBlocker, closingSignal, type RuleClock } from './closing-rules.js';
import { FolderIndex } from './folder-index.js';
import { endsWithMcapMagic } from './mcap-magic.js';
import { scanOpenWriters, type OpenWriterScan } from './open-writers.js';
import {
  statKey,
  type ClosingSignal,
  type FilePhase,
  type HeldBackCode,
  type HeldBackFile,
  type TrackedFile,
} from './tracked-file.js';

export type { HeldBackCode, HeldBackFile };

/** A file confirmed closed and due for upload now (the watcher's decision). */
export interface ReleasedFile {
  path: string;
  remotePath: string;
  bagName: string;
  role: FileRole;
  index: number | undefined;
  /** The version that was confirmed closed; the upload is only valid for exactly this version. */
  size: number;
  mtimeMs: number;
  /** A different version was uploaded before: replace it on the server. */
  replace: boolean;
  signal: ClosingSignal;
  /** Set when the file was never closed and goes anyway ("recovered, unclosed"): why. */
  unclosed?: string | undefined;
}

/** A released file that must not be uploaded after all (it vanished, or its `.zstd` appeared). */
export interface WithdrawnFile {
  path: string;
  remotePath: string;
  reason: string;
}

/** Where one tracked file stands (for the agent's drain at shutdown). */
export interface TrackedView {
  path: string;
  /** Its folder relative to the root (`''` for the root): the bag it belongs to. */
  dir: string;
  role: FileRole;
  phase: FilePhase;
}

/** A file seen but not yet released, for the status. */
export interface WaitingFile {
  path: string;
  remotePath: string;
  bagName: string;
  size: number;
  phase: FilePhase;
  reason: string;
  /** Date.now() when first seen. */
  firstSeen: number;
  /** Set when it is held back for a reason that needs attention (see HeldBackCode). */
  heldBack: HeldBackCode | undefined;
}

export interface BagWatcherEvents {
  release: [ReleasedFile];
  withdraw: [WithdrawnFile];
  /** A waiting file appeared or changed phase or reason. */
  waiting: [WaitingFile];
  /** A file is held back for a reason that needs attention (once per file and reason; also logged at warn). */
  heldBack: [HeldBackFile];
  error: [Error];
}

export interface BagWatcherOptions {
  /** The recording root (resolved once: a symlinked root such as `~/bags -> /data/bags` works). */
  root: string;
  /** Seconds (see watcher-options.ts). */
  settleTime: number;
  quietPeriod: number;
  rescanInterval: number;
  /** Seconds after which a never-closed `.mcap` goes anyway, flagged; 0 never. Default 600. */
  unclosedTimeout?: number;
  include: readonly string[];
  exclude: readonly string[];
  /** Folders inside the root that are never watched (the move target). Absolute. */
  skipDirs?: readonly string[];
  /** Whether this exact version of a file was already verified by the server (the ledger). */
  isUploaded?: (filePath: string, stat: { size: number; mtimeMs: number }) => boolean;
  /**
   * True when an earlier version of this same file (same inode) was uploaded: the new version
   * replaces it on the server. A different file at the same path (a new recording reusing a bag
   * name) is never uploaded with replace: the server refuses it rather than lose the old one.
   */
  wasUploaded?: (filePath: string, stat: { ino: number }) => boolean;
  logger?: Logger;
  /** The /proc scan; replaceable where a test needs a writer it cannot create. */
  scanWriters?: (paths: Iterable<string>) => Promise<OpenWriterScan>;
}

/** Work the watcher did, for tests (every step is O(changes)) and for metrics. */
export interface WatcherCounters {
  /** Passes of the closing rules (one per file looked at). */
  judged: number;
  /** lstat checks of tracked files. */
  restats: number;
  ticks: number;
  /** /proc scans for writers (one per batch of candidates). */
  writerScans: number;
  rescans: number;
}

const PENDING_MARK_MS = 10 * 60_000;
/** How long a file found held open for writing waits before the next /proc scan for it. */
const HELD_RECHECK_MS = 1000;
/** A file being recorded is looked at least this often, events or not. */
const OPEN_POLL_MS = 2000;
/** A closing file held back by a blocker (a -wal file, a compressor) is looked at this often. */
const BLOCKED_POLL_MS = 1000;
/** File system checks run at once within one pass (each is a few syscalls on the thread pool). */
const IO_CONCURRENCY = 32;
/** Files logged once as ignored (not bag files); beyond this, one line says more were not logged. */
const MAX_IGNORED_LOGGED = 10_000;

const isActive = (phase: FilePhase): boolean => phase === 'open' || phase === 'closing' || phase === 'ready';

interface DueEntry {
  at: number;
  file: TrackedFile;
}

/**
 * Watches a recording root and decides, file by file, when a file is closed and may be
 * uploaded, and in which order (see closing-rules.ts for the rules and docs/agent.md "How a split
 * is judged closed"). It never reads a file's content beyond the MCAP end magic and never talks
 * to the network: it emits `release` decisions, and is told back when a file was verified
 * (`uploaded`) or changed during its upload (`changedDuringUpload`).
 *
 * Every step costs O(what changed), not O(files watched): each folder is indexed once
 * (folder-index.ts) and updated on events; a file is looked at when an event names it, when a
 * file it depends on comes or goes, or when its own next deadline comes (a heap of deadlines:
 * the end of its quiet period, the settle time, a poll while it is being written). chokidar's
 * events only make it look sooner: every decision comes from lstat() of the file, and a periodic
 * rescan (O(files), every rescanInterval) catches events the OS dropped.
 *
 * Only regular files really inside the root are tracked: nothing is reached through a symbolic
 * link (links, files under a linked folder, a folder renamed into a link are held back with the
 * reason; the engine's open checks it again, see common/files/no-follow.ts).
 */
export class BagWatcher extends EventEmitter<BagWatcherEvents> {
  readonly root: string;
  #options: BagWatcherOptions;
  #filter: FileFilter;
  #rootName: string;
  readonly #files = new Map<string, TrackedFile>();
  readonly #folders = new Map<string, FolderIndex>();
  /** Tracked files by name (markClosed matches by folder and file name). */
  readonly #byName = new Map<string, Set<TrackedFile>>();
  /** Files to look at in the next pass. */
  readonly #dirty = new Set<TrackedFile>();
  /** Folders whose release order may have moved. */
  readonly #touched = new Set<FolderIndex>();
  /** Deadlines of tracked files (stale entries are skipped: an entry counts while `at === file.dueAt`). */
  readonly #due = new BinaryHeap<DueEntry>((a, b) => a.at < b.at);
  readonly #pendingMarks = new Map<string, number>();
  readonly #heldRecheck = new Map<string, { key: string; at: number }>();
  /** Tracked files held back for a reason that needs attention. */
  readonly #heldTracked = new Set<TrackedFile>();
  /** Paths held back that are not tracked: links, special files, unusable names. */
  readonly #heldUntracked = new Map<string, HeldBackFile>();
  /** `code\0path` already logged at warn. */
  readonly #warned = new Set<string>();
  readonly #ignoredLogged = new Set<string>();
  readonly #counters: WatcherCounters = { judged: 0, restats: 0, ticks: 0, writerScans: 0, rescans: 0 };
  #chokidar: FSWatcher | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #tickAt = Infinity;
  #ticking: Promise<void> | undefined;
  #tickAgain = false;
  #rescanTimer: NodeJS.Timeout | undefined;
  #rescanning: Promise<void> | undefined;
  #stopped = false;
  #started = false;
  /** No pass runs while the start-up scan finds the backlog: it is judged once, when the scan is done. */
  #scanningBacklog = false;

  constructor(options: BagWatcherOptions) {
    super();
    this.#options = options;
    try {
      this.root = realpathSync(options.root);
    } catch (error) {
      throw new UploadError(
        'LOCAL_FILE_NOT_FOUND',
        `The recording folder ${options.root} does not exist or cannot be read`,
        { cause: error },
      );
    }
    this.#rootName = path.basename(this.root);
    this.#filter = createFileFilter(options);
  }

  get #settleMs(): number {
    return this.#options.settleTime * 1000;
  }

  get #quietMs(): number {
    return this.#options.quietPeriod * 1000;
  }

  get #unclosedMs(): number {
    return (this.#options.unclosedTimeout ?? 600) * 1000;
  }

  /** Work done so far (each counter only grows). */
  get counters(): Readonly<WatcherCounters> {
    return { ...this.#counters };
  }

  /** Changes timing settings at run time (the next pass of the rules uses them). */
  setOptions(
    partial: Partial<Pick<BagWatcherOptions, 'settleTime' | 'quietPeriod' | 'rescanInterval' | 'unclosedTimeout'>>,
  ): void {
    const rescanChanged =
      partial.rescanInterval !== undefined && partial.rescanInterval !== this.#options.rescanInterval;
    this.#options = { ...this.#options, ...partial };
    if (rescanChanged && this.#started && !this.#stopped) {
      clearTimeout(this.#rescanTimer);
      this.#scheduleRescan();
    }
    // New deadlines: every file being confirmed is looked at again.
    for (const folder of this.#folders.values()) for (const file of folder.active) this.#dirty.add(file);
    this.#schedule(0);
  }

  /** Watches, then scans the backlog; resolves once the backlog is known. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    // chokidar is loaded only by a watching agent: `upload` never pays for it at start.
    const { watch } = await import('chokidar');
    if (this.#stopped) return; // stopped while it loaded: nothing to watch
    const watcher = watch(this.root, {
      ignoreInitial: true,
      atomic: false,
      persistent: true,
      // A link is reported as itself (and held back), never followed.
      followSymlinks: false,
      ignored: (filePath: string, stats?: Stats) => this.#ignored(filePath, stats),
    });
    this.#chokidar = watcher;
    const onFile = (filePath: string): void =>
      void this.#onFileEvent(filePath).catch((error: unknown) => this.#fail(error));
    watcher.on('add', onFile);
    watcher.on('change', onFile);
    watcher.on('unlink', (filePath) => this.#onUnlink(filePath));
    watcher.on('unlinkDir', (dirPath) => this.#onUnlinkDir(dirPath));
    watcher.on('error', (error) =>
      this.#options.logger?.warn({ err: error }, 'file watcher error; the periodic rescan covers it'),
    );
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.#scanningBacklog = true;
    try {
      await this.rescan();
    } finally {
      this.#scanningBacklog = false;
    }
    this.#schedule(0);
    this.#scheduleRescan();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#tickTimer);
    clearTimeout(this.#rescanTimer);
    await this.#chokidar?.close();
    await this.#ticking;
    await this.#rescanning;
  }

  /**
   * The recorder says it closed this file (rosbag2 `/events/write_split`). Matched by bag
   * folder name and file name, because the recorder's paths may be relative to its own working
   * directory. A file not seen yet is remembered for a while. Returns whether a file matched.
   */
  markClosed(filePath: string): boolean {
    const segments = filePath.split(/[\\/]+/).filter(Boolean);
    const name = segments[segments.length - 1];
    if (!name) return false;
    const folder = segments.length > 1 ? segments[segments.length - 2] : undefined;
    const matches = [...(this.#byName.get(name) ?? [])].filter(
      (file) => folder === undefined || this.#folderName(file) === folder,
    );
    for (const file of matches) {
      file.marked = true;
      this.#dirty.add(file);
    }
    if (matches.length === 0) this.#pendingMarks.set(`${folder ?? ''}/${name}`, performance.now() + PENDING_MARK_MS);
    this.#schedule(0);
    return matches.length > 0;
  }

  /** The server verified this version of a released file. */
  uploaded(filePath: string, version: { size: number; mtimeMs: number }): void {
    const file = this.#files.get(filePath);
    if (!file) return;
    this.#setPhase(file, 'uploaded');
    file.replace = false;
    file.unclosed = undefined;
    file.reason = 'uploaded';
    file.size = version.size;
    file.mtimeMs = version.mtimeMs;
    this.#schedule(0);
  }

  /**
   * A released file changed while it was uploaded (or its upload failed because it changed):
   * the result is discarded, and the file goes back to being confirmed, then is uploaded again
   * with replace.
   */
  changedDuringUpload(filePath: string): void {
    const file = this.#files.get(filePath);
    if (!file) return;
    const now = performance.now();
    this.#setPhase(file, 'closing');
    file.replace = true;
    file.stableSince = now;
    file.seenAt = now;
    file.settledSince = now;
    file.magic = undefined;
    file.reason = 'changed during its upload; waiting until it is closed again';
    this.emit('waiting', this.#waitingOf(file));
    this.#dirty.add(file);
    this.#schedule(0);
  }

  /** Stop tracking a file the agent deleted or moved. */
  forget(filePath: string): void {
    const file = this.#files.get(filePath);
    if (file) this.#remove(file);
  }

  /** Files seen and not yet released (held back ones included), oldest first. */
  waiting(): WaitingFile[] {
    const files: TrackedFile[] = [];
    for (const folder of this.#folders.values()) for (const file of folder.active) files.push(file);
    // Refused for their name: not active, but shown (they hold back their bag's metadata.yaml).
    for (const file of this.#heldTracked) if (file.phase === 'refused') files.push(file);
    return files.sort((a, b) => a.firstSeen - b.firstSeen).map((file) => this.#waitingOf(file));
  }

  /** Files held back for a reason that needs attention (tracked or not), oldest first. */
  heldBack(): HeldBackFile[] {
    const held = [...this.#heldUntracked.values()];
    for (const file of this.#heldTracked) if (file.heldBack) held.push(file.heldBack);
    return held.sort((a, b) => a.since - b.since);
  }

  /** Every tracked file, with its folder and phase. */
  tracked(): TrackedView[] {
    return [...this.#files.values()].map((file) => ({
      path: file.path,
      dir: file.dir,
      role: file.role,
      phase: file.phase,
    }));
  }

  /** Whether the watcher tracks this path (absolute, symlinks resolved), and in which phase. */
  phaseOf(filePath: string): FilePhase | undefined {
    return this.#files.get(filePath)?.phase;
  }

  /** Walks the whole root: finds files that events missed, files that vanished, and links. */
  async rescan(): Promise<void> {
    if (this.#rescanning) return this.#rescanning;
    this.#rescanning = (async () => {
      this.#counters.rescans += 1;
      const seen = new Set<string>();
      const seenHeld = new Set<string>();
      await this.#walk(this.root, seen, seenHeld);
      if (this.#stopped) return;
      // Files the walk did not just find may have changed without an event: lstat them all
      // (here, so a rescan's promise covers its work), then judge the ones still to upload.
      const known = [...this.#files.values()].filter((file) => !file.fresh);
      const stamp = performance.now();
      const realFolders = new Set<string>();
      await forEachLimited(known, IO_CONCURRENCY, (file) => this.#restat(file, stamp, realFolders));
      for (const file of known) if (isActive(file.phase) && this.#files.get(file.path) === file) this.#dirty.add(file);
      for (const held of [...this.#heldUntracked.keys()])
        if (!seenHeld.has(held) && !seen.has(held)) this.#heldUntracked.delete(held);
      this.#schedule(0);
    })().finally(() => {
      this.#rescanning = undefined;
    });
    return this.#rescanning;
  }

  #scheduleRescan(): void {
    if (this.#stopped || this.#options.rescanInterval <= 0) return;
    this.#rescanTimer = setTimeout(() => {
      this.rescan()
        .catch((error: unknown) => this.#fail(error))
        .finally(() => this.#scheduleRescan());
    }, this.#options.rescanInterval * 1000);
    this.#rescanTimer.unref?.();
  }

  async #walk(dir: string, seen: Set<string>, seenHeld: Set<string>, realFolders = new Set<string>()): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir === this.root) this.#options.logger?.warn({ err: error, dir }, 'cannot read the recording root');
      return;
    }
    const files: string[] = [];
    for (const entry of entries) {
      if (this.#stopped) return;
      const full = path.join(dir, entry.name);
      const rel = this.#relative(full);
      if (entry.isDirectory()) {
        if (!this.#skipsDir(full, rel) && (await isRealFolder(full)))
          await this.#walk(full, seen, seenHeld, realFolders);
      } else if (entry.isFile()) {
        const why = this.#filter.ignoredBecause(rel);
        if (why === undefined) {
          seen.add(full);
          // A tracked file is lstat'ed by the rescan itself, after the walk.
          if (!this.#files.has(full)) files.push(full);
        } else if (why === 'not-a-bag-file') {
          this.#noteIgnored(rel);
        }
      } else if (!isNeverUploaded(rel) && !this.#skipsDir(full, rel)) {
        // A link (to a file or a folder) or a special file: never followed, never read.
        if (this.#noteUnsafeEntry(full, rel, entry)) seenHeld.add(full);
      }
    }
    await forEachLimited(files, IO_CONCURRENCY, (file) => this.#discover(file, realFolders));
  }

  #relative(filePath: string): string {
    return path.relative(this.root, filePath).split(path.sep).join('/');
  }

  #skipsDir(full: string, rel: string): boolean {
    return (
      this.#filter.skipsDir(rel) ||
      (this.#options.skipDirs ?? []).some((skip) => full === skip || full.startsWith(skip + path.sep))
    );
  }

  #ignored(filePath: string, stats?: Stats): boolean {
    const rel = this.#relative(filePath);
    if (rel === '' || rel.startsWith('..')) return false;
    if (stats?.isFile()) {
      const why = this.#filter.ignoredBecause(rel);
      if (why === 'not-a-bag-file') this.#noteIgnored(rel);
      return why !== undefined;
    }
    return this.#skipsDir(filePath, rel);
  }

  /** A file no rule takes: said once, at info (it is not an error: a robot's folder holds other files). */
  #noteIgnored(rel: string): void {
    if (this.#ignoredLogged.has(rel) || this.#ignoredLogged.size > MAX_IGNORED_LOGGED) return;
    this.#ignoredLogged.add(rel);
    if (this.#ignoredLogged.size > MAX_IGNORED_LOGGED) {
      this.#options.logger?.info(
        `more than ${MAX_IGNORED_LOGGED} files are ignored as not bag files; the others are not logged`,
      );
      return;
    }
    const name = path.posix.basename(rel);
    const extension = path.posix.extname(name);
    this.#options.logger?.info(
      { file: rel },
      `ignored ${rel}: not a bag file; add --include '${extension ? `*${extension}` : name}' to upload it`,
    );
  }

  /**
   * A directory entry that is a link or a special file. Held back (warned, in the status) when a
   * regular file of that name would be uploaded, or when it is a link that could lead to a folder;
   * returns whether it was held back.
   */
  #noteUnsafeEntry(full: string, rel: string, entry: Dirent | Stats): boolean {
    const wanted = this.#filter.wantsFile(rel);
    if (entry.isSymbolicLink()) {
      if (!wanted && !this.#looksLikeFolderName(rel)) {
        if (!this.#ignoredLogged.has(rel) && this.#ignoredLogged.size <= MAX_IGNORED_LOGGED) {
          this.#ignoredLogged.add(rel);
          this.#options.logger?.info({ file: rel }, `skipped ${rel}: a symbolic link (links are never followed)`);
        }
        return false;
      }
      this.#holdUntracked(
        full,
        'symbolic-link',
        'a symbolic link: links are never followed (copy the file or folder into the watched folder instead)',
      );
      return true;
    }
    if (!wanted) return false;
    this.#holdUntracked(full, 'not-a-regular-file', 'not a regular file (a named pipe, socket or device)');
    return true;
  }

  /** A link without a file extension may stand for a bag folder (`run1 -> /elsewhere/run1`). */
  #looksLikeFolderName(rel: string): boolean {
    return path.posix.extname(rel) === '';
  }

  #folderName(file: TrackedFile): string {
    return file.dir === '' ? this.#rootName : path.posix.basename(file.dir);
  }

  #folderOf(file: TrackedFile): FolderIndex {
    let folder = this.#folders.get(file.dir);
    if (!folder) {
      folder = new FolderIndex(file.dir);
      this.#folders.set(file.dir, folder);
    }
    return folder;
  }

  async #onFileEvent(filePath: string): Promise<void> {
    if (this.#stopped) return;
    const existing = this.#files.get(filePath);
    if (existing) {
      existing.fresh = false;
      this.#dirty.add(existing);
      this.#schedule(0);
      return;
    }
    const rel = this.#relative(filePath);
    if (rel === '' || rel.startsWith('..') || isNeverUploaded(rel) || this.#skipsDir(filePath, rel)) return;
    let stats: Stats;
    try {
      stats = await lstat(filePath);
    } catch {
      return;
    }
    if (stats.isSymbolicLink() || (!stats.isFile() && !stats.isDirectory())) {
      this.#noteUnsafeEntry(filePath, rel, stats);
      return;
    }
    const why = this.#filter.ignoredBecause(rel);
    if (why === 'not-a-bag-file') this.#noteIgnored(rel);
    if (why !== undefined) return;
    await this.#discover(filePath);
  }

  #onUnlink(filePath: string): void {
    const file = this.#files.get(filePath);
    if (file) {
      file.fresh = false;
      this.#dirty.add(file);
    }
    this.#heldUntracked.delete(filePath);
    this.#schedule(0);
  }

  /** A folder went (or was renamed away): every file under it is looked at again. */
  #onUnlinkDir(dirPath: string): void {
    const rel = this.#relative(dirPath);
    for (const folder of this.#folders.values()) {
      if (folder.dir !== rel && !folder.dir.startsWith(`${rel}/`)) continue;
      for (const file of folder.files) {
        file.fresh = false;
        this.#dirty.add(file);
      }
    }
    for (const held of [...this.#heldUntracked.keys()])
      if (held.startsWith(dirPath + path.sep)) this.#heldUntracked.delete(held);
    this.#schedule(0);
  }

  /** A path events or a rescan found that is not tracked yet: judge what it is, and track it if it may be uploaded. */
  async #discover(filePath: string, realFolders?: Set<string>): Promise<void> {
    if (this.#stopped) return;
    const rel = this.#relative(filePath);
    if (rel.startsWith('..') || !this.#filter.wantsFile(rel)) return;
    const tracked = this.#files.get(filePath);
    if (tracked) {
      this.#dirty.add(tracked);
      this.#schedule(0);
      return;
    }
    const verdict = await lstatBelow(this.root, filePath, realFolders).catch((error: unknown) => {
      this.#options.logger?.debug({ err: error, file: rel }, 'cannot stat a file in the recording root');
      return { kind: 'missing' as const };
    });
    if (this.#stopped || this.#files.has(filePath)) return;
    if (verdict.kind === 'missing') return;
    if (verdict.kind === 'unsafe') {
      const link = verdict.reason.includes('symbolic link');
      this.#holdUntracked(filePath, link ? 'symbolic-link' : 'not-a-regular-file', verdict.reason);
      return;
    }
    const stats = verdict.stats;
    const info = classifyFile(rel);
    const bagLike =
      info.dir === '' && (info.role === 'metadata' || (info.role === 'split' && info.stem === this.#rootName));
    const remotePath = bagLike ? `${this.#rootName}/${rel}` : rel;
    const bagName = bagLike ? this.#rootName : info.dir === '' ? '' : path.posix.basename(info.dir);
    // Not valid UTF-8: the name read back is not the file's, so it cannot even be opened.
    const unusable = remotePath.includes('\uFFFD') ? unusableName(remotePath) : undefined;
    if (unusable) {
      this.#holdUntracked(filePath, 'unusable-name', unusable, { remotePath: '', bagName, size: stats.size });
      return;
    }
    this.#heldUntracked.delete(filePath);
    const now = performance.now();
    const age = Math.max(0, Date.now() - stats.mtimeMs);
    const version = { size: stats.size, mtimeMs: stats.mtimeMs };
    const refusal = nameRefusal(remotePath);
    const verified = refusal === undefined && (this.#options.isUploaded?.(filePath, version) ?? false);
    const file: TrackedFile = {
      ...info,
      path: filePath,
      relPath: rel,
      remotePath,
      bagName,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      ino: stats.ino,
      stableSince: now,
      seenAt: now,
      settledSince: now - age,
      marked: false,
      signal: undefined,
      phase: refusal !== undefined ? 'refused' : verified ? 'uploaded' : 'open',
      reason: refusal ?? (verified ? 'uploaded' : 'seen'),
      replace: !verified && (this.#options.wasUploaded?.(filePath, { ino: stats.ino }) ?? false),
      magic: undefined,
      firstSeen: Date.now(),
      dueAt: Number.POSITIVE_INFINITY,
      heldBack: undefined,
      unclosed: undefined,
      fresh: true,
    };
    const markKey = `${this.#folderName(file)}/${file.name}`;
    if (this.#pendingMarks.delete(markKey) || this.#pendingMarks.delete(`/${file.name}`)) file.marked = true;
    // A refused name is tracked, so that its bag's metadata.yaml and the later splits of its stem
    // wait for it (a receiver takes metadata.yaml to mean the bag is complete); renamed, it is a new file.
    this.#track(file);
    if (refusal !== undefined) this.#holdBack(file, 'unusable-name', refusal);
    if (file.phase !== 'uploaded') this.emit('waiting', this.#waitingOf(file));
    this.#schedule(0);
  }

  /** Adds a file to the maps and its folder's index, and marks the files whose judgement it changes. */
  #track(file: TrackedFile): void {
    const folder = this.#folderOf(file);
    const lastBefore = file.role === 'split' ? folder.lastSplit(file.stem ?? '') : undefined;
    this.#files.set(file.path, file);
    let named = this.#byName.get(file.name);
    if (!named) {
      named = new Set();
      this.#byName.set(file.name, named);
    }
    named.add(file);
    const firstCompressed = file.role === 'split' && file.compressed && !folder.stemCompressed(file.stem ?? '');
    folder.add(file);
    this.#touched.add(folder);
    if (isActive(file.phase)) this.#dirty.add(file);
    if (file.role === 'metadata') {
      // Every file of the bag now has a closing signal.
      for (const other of folder.active) this.#dirty.add(other);
    }
    if (file.role !== 'split') return;
    // The split before it now has a later split.
    if (lastBefore && (lastBefore.index ?? 0) < (file.index ?? 0) && isActive(lastBefore.phase))
      this.#dirty.add(lastBefore);
    if (file.compressed) {
      const plain = folder.sibling(file, false);
      if (plain) this.#makeTransient(plain);
      // File-compression mode shows: the bag's plain splits now wait for their own .zstd.
      if (firstCompressed)
        for (const other of folder.active) if (other.stem === file.stem && !other.compressed) this.#dirty.add(other);
    } else if (folder.sibling(file, true) && file.phase !== 'uploaded') {
      this.#makeTransient(file);
    }
  }

  /** A plain split that gained its `.zstd`: never uploaded; a released one is withdrawn. */
  #makeTransient(file: TrackedFile): void {
    if (file.phase === 'transient' || file.phase === 'uploaded') return;
    const wasReleased = file.phase === 'released';
    this.#setPhase(file, 'transient');
    this.#clearHeldBack(file);
    file.reason = `file compression mode: ${file.name}.zstd replaces it`;
    if (wasReleased)
      this.emit('withdraw', {
        path: file.path,
        remotePath: file.remotePath,
        reason: `${file.relPath} was replaced by ${file.name}.zstd (file compression mode)`,
      });
  }

  /** Re-reads a file's type, size, mtime and inode; notices a vanished, replaced or changed file. */
  async #restat(file: TrackedFile, now: number, realFolders?: Set<string>): Promise<void> {
    if (file.fresh) {
      // lstat'ed when it was found, and no event since: judged on that.
      file.fresh = false;
      return;
    }
    this.#counters.restats += 1;
    let verdict: PathVerdict;
    try {
      verdict = await lstatBelow(this.root, file.path, realFolders);
    } catch (error) {
      this.#options.logger?.debug({ err: error, file: file.relPath }, 'cannot stat a watched file');
      return;
    }
    if (this.#files.get(file.path) !== file) return;
    if (verdict.kind === 'missing') {
      this.#vanished(file, `${file.relPath} vanished before its upload finished`);
      return;
    }
    if (verdict.kind === 'unsafe') {
      // Replaced by a link, or a folder on its path was: never followed.
      this.#vanished(file, `${file.relPath} was replaced: ${verdict.reason}`);
      const link = verdict.reason.includes('symbolic link');
      this.#holdUntracked(file.path, link ? 'symbolic-link' : 'not-a-regular-file', verdict.reason);
      return;
    }
    const stats = verdict.stats;
    file.seenAt = now;
    if (stats.size === file.size && stats.mtimeMs === file.mtimeMs && stats.ino === file.ino) return;
    const sameFile = stats.ino === file.ino;
    file.size = stats.size;
    file.mtimeMs = stats.mtimeMs;
    file.ino = stats.ino;
    file.stableSince = now;
    file.settledSince = now;
    file.magic = undefined;
    file.unclosed = undefined;
    this.#clearHeldBack(file);
    if (file.phase === 'ready') this.#setPhase(file, 'closing');
    if (file.phase === 'uploaded') {
      // A verified file was modified afterwards (reindex, an edit): a new version to upload,
      // replacing the old one only if it is the same file and not a new one under the same name.
      this.#setPhase(file, 'open');
      file.replace = sameFile;
      file.reason = 'changed after it was uploaded';
      this.emit('waiting', this.#waitingOf(file));
    }
  }

  #vanished(file: TrackedFile, reason: string): void {
    if (file.phase === 'released') this.emit('withdraw', { path: file.path, remotePath: file.remotePath, reason });
    this.#remove(file);
    this.#schedule(0);
  }

  #remove(file: TrackedFile): void {
    if (this.#files.get(file.path) !== file) return;
    this.#files.delete(file.path);
    const named = this.#byName.get(file.name);
    named?.delete(file);
    if (named?.size === 0) this.#byName.delete(file.name);
    this.#heldRecheck.delete(file.path);
    this.#clearHeldBack(file);
    this.#dirty.delete(file);
    file.dueAt = Number.POSITIVE_INFINITY;
    const folder = this.#folders.get(file.dir);
    if (!folder) return;
    folder.remove(file);
    this.#touched.add(folder);
    if (file.role === 'split') {
      // The split that was before it may have lost its "later split" signal; a .zstd whose plain
      // source is gone is no longer being compressed.
      const last = folder.lastSplit(file.stem ?? '');
      if (last && isActive(last.phase)) this.#dirty.add(last);
      const compressed = file.compressed ? undefined : folder.sibling(file, true);
      if (compressed && isActive(compressed.phase)) this.#dirty.add(compressed);
    }
    if (folder.size === 0) {
      this.#folders.delete(file.dir);
      this.#touched.delete(folder);
    }
  }

  #setPhase(file: TrackedFile, phase: FilePhase): void {
    if (file.phase === phase) return;
    const folder = this.#folderOf(file);
    folder.setPhase(file, phase);
    this.#touched.add(folder);
  }

  /** Looks at `file` again at `at` (monotonic ms) at the latest. */
  #dueAt(file: TrackedFile, at: number): void {
    if (!Number.isFinite(at) || file.dueAt <= at) return;
    file.dueAt = at;
    this.#due.push({ at, file });
  }

  /** Moves files whose deadline came into the dirty set. */
  #collectDue(now: number): void {
    for (;;) {
      const top = this.#due.peek();
      if (top === undefined || top.at > now) return;
      this.#due.pop();
      if (top.file.dueAt !== top.at || this.#files.get(top.file.path) !== top.file) continue;
      top.file.dueAt = Number.POSITIVE_INFINITY;
      this.#dirty.add(top.file);
    }
  }

  /** The next live deadline, dropping stale ones on the way. */
  #nextDue(): number | undefined {
    for (;;) {
      const top = this.#due.peek();
      if (top === undefined) return undefined;
      if (top.file.dueAt === top.at && this.#files.get(top.file.path) === top.file) return top.at;
      this.#due.pop();
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#scanningBacklog) return;
    if (this.#ticking) {
      this.#tickAgain = true;
      return;
    }
    const at = performance.now() + delayMs;
    if (this.#tickTimer && at >= this.#tickAt) return;
    clearTimeout(this.#tickTimer);
    this.#tickAt = at;
    this.#tickTimer = setTimeout(() => {
      this.#tickTimer = undefined;
      this.#tickAt = Number.POSITIVE_INFINITY;
      this.#ticking = this.#tick()
        .catch((error: unknown) => this.#fail(error))
        .finally(() => {
          this.#ticking = undefined;
          const again = this.#tickAgain || this.#dirty.size > 0 || this.#touched.size > 0;
          this.#tickAgain = false;
          if (again) {
            this.#schedule(0);
            return;
          }
          // Deadlines close together are looked at in one pass (one /proc scan for all of them).
          const next = this.#nextDue();
          if (next !== undefined) this.#schedule(Math.max(next - performance.now(), this.#tickPeriod()));
        });
    }, delayMs);
  }

  #tickPeriod(): number {
    return Math.min(500, Math.max(100, this.#quietMs / 4));
  }

  /** One pass of the rules over the files that changed, or whose deadline came. */
  async #tick(): Promise<void> {
    this.#counters.ticks += 1;
    if (this.#pendingMarks.size > 0)
      for (const [key, expiry] of this.#pendingMarks) if (expiry < performance.now()) this.#pendingMarks.delete(key);
    this.#collectDue(performance.now() + 5);
    const batch = [...this.#dirty];
    this.#dirty.clear();
    if (batch.length > 0) {
      const stamp = performance.now();
      const realFolders = new Set<string>();
      await forEachLimited(batch, IO_CONCURRENCY, (file) => this.#restat(file, stamp, realFolders));
      if (this.#stopped) return;
      const clock: RuleClock = { now: performance.now(), settleMs: this.#settleMs };
      const candidates: TrackedFile[] = [];
      await forEachLimited(batch, IO_CONCURRENCY, async (file) => {
        if (this.#files.get(file.path) !== file || !isActive(file.phase)) return;
        const before = `${file.phase}|${file.reason}`;
        await this.#judge(file, clock, candidates);
        if (`${file.phase}|${file.reason}` !== before && file.phase !== 'ready')
          this.emit('waiting', this.#waitingOf(file));
      });
      if (candidates.length > 0) await this.#confirmNoWriters(candidates);
      if (this.#stopped) return;
    }
    const touched = [...this.#touched];
    this.#touched.clear();
    for (const folder of touched) for (const file of folder.releasable()) this.#release(file);
  }

  async #judge(file: TrackedFile, clock: RuleClock, candidates: TrackedFile[]): Promise<void> {
    this.#counters.judged += 1;
    const folder = this.#folderOf(file);
    const signal = closingSignal(file, folder, clock);
    if (!signal) {
      this.#setPhase(file, 'open');
      file.reason = 'being recorded: no later split, no metadata.yaml, and it changed within the settle time';
      this.#dueAt(file, Math.min(file.settledSince + this.#settleMs, clock.now + OPEN_POLL_MS));
      return;
    }
    if (file.phase === 'ready') return; // confirmed and unchanged since (a change sets it back to closing)
    this.#setPhase(file, 'closing');
    const walExists = file.storage === 'db3' && !file.compressed && (await exists(`${file.path}-wal`));
    const blocker = closingBlocker(file, folder, clock, walExists);
    if (blocker) {
      file.reason = `closing (${signal}), ${blocker}`;
      this.#dueAt(file, Math.min(clock.now + BLOCKED_POLL_MS, file.settledSince + this.#settleMs));
      return;
    }
    // Unchanged for the quiet period means: an lstat at its end still saw the same file.
    if (file.seenAt - file.stableSince < this.#quietMs) {
      file.reason = `closing (${signal}), waiting for the quiet period`;
      this.#dueAt(file, file.stableSince + this.#quietMs);
      return;
    }
    file.unclosed = undefined;
    if (file.storage === 'mcap' && !file.compressed) {
      const key = statKey(file);
      if (file.magic?.key !== key) file.magic = { key, ok: await endsWithMcapMagic(file.path) };
      if (!file.magic.ok && !this.#judgeUnclosed(file, signal, clock)) return;
    }
    file.signal = signal;
    // A file found held open is looked at again after a pause, not on every pass (one /proc scan
    // costs tens of ms), unless it changes (which restarts its quiet period anyway).
    const recheckAt = this.#heldRecheck.get(file.path);
    if (recheckAt !== undefined && recheckAt.key === statKey(file) && clock.now < recheckAt.at) {
      this.#dueAt(file, recheckAt.at);
      return;
    }
    file.reason = `closing (${signal}), confirming`;
    candidates.push(file);
  }

  /**
   * An `.mcap` without its end magic. While it changes it is still being written. Once it stopped
   * changing for the settle time it is held back (warned once: a recorder that crashed never
   * closes it); after `unclosedTimeout` unchanged it goes anyway, flagged "recovered, unclosed",
   * so the data does not stay on the robot forever and its bag's metadata.yaml can follow.
   * Returns true when it goes (to the writer check).
   */
  #judgeUnclosed(file: TrackedFile, signal: ClosingSignal, clock: RuleClock): boolean {
    const what = file.size === 0 ? 'empty (0 bytes)' : 'no MCAP end magic';
    const unchangedMs = clock.now - file.settledSince;
    const unclosedMs = this.#unclosedMs;
    if (unchangedMs >= this.#settleMs) {
      const then =
        unclosedMs > 0
          ? `it is uploaded as "recovered, unclosed" once unchanged for ${formatDuration(unclosedMs / 1000)} ` +
            '(unclosedTimeout), unless it closes first'
          : 'it is not uploaded (unclosedTimeout is 0)';
      this.#holdBack(
        file,
        'unclosed',
        `never closed: ${what}, unchanged for ${formatDuration(Math.round(unchangedMs / 1000))} ` +
          `(a recorder crash or power loss?); ${then}`,
      );
    }
    if (unclosedMs > 0 && unchangedMs >= unclosedMs) {
      file.unclosed = `${what}, unchanged for ${formatDuration(Math.round(unchangedMs / 1000))}`;
      return true;
    }
    file.reason = `closing (${signal}), ${what} yet (still being written, or cut short)`;
    const next = unchangedMs < this.#settleMs ? file.settledSince + this.#settleMs : file.settledSince + unclosedMs;
    if (unchangedMs < this.#settleMs || unclosedMs > 0) this.#dueAt(file, next);
    return false;
  }

  async #confirmNoWriters(candidates: TrackedFile[]): Promise<void> {
    this.#counters.writerScans += 1;
    const scan = this.#options.scanWriters ?? scanOpenWriters;
    const result = await scan(candidates.map((file) => file.path));
    const now = performance.now();
    for (const file of candidates) {
      if (this.#files.get(file.path) !== file || file.phase !== 'closing') continue;
      const pid = result.held.get(file.path);
      if (pid !== undefined) {
        file.reason = `closing, held open for writing by process ${pid}`;
        file.unclosed = undefined;
        this.#heldRecheck.set(file.path, { key: statKey(file), at: now + HELD_RECHECK_MS });
        this.#dueAt(file, now + HELD_RECHECK_MS);
        continue;
      }
      this.#heldRecheck.delete(file.path);
      this.#setPhase(file, 'ready');
      file.reason = file.unclosed
        ? `never closed (${file.unclosed}); waiting for its turn`
        : 'closed; waiting for its turn';
    }
  }

  #release(file: TrackedFile): void {
    this.#setPhase(file, 'released');
    file.reason = 'released for upload';
    this.#clearHeldBack(file);
    const signal = file.signal ?? 'settled';
    if (file.unclosed)
      this.#options.logger?.warn(
        { file: file.relPath, size: file.size, reason: file.unclosed },
        `uploading ${file.relPath} as "recovered, unclosed" (${file.unclosed}); ros2 bag reindex can repair its bag`,
      );
    else this.#options.logger?.debug({ file: file.relPath, signal, size: file.size }, 'file closed; queued for upload');
    this.emit('release', {
      path: file.path,
      remotePath: file.remotePath,
      bagName: file.bagName,
      role: file.role,
      index: file.index,
      size: file.size,
      mtimeMs: file.mtimeMs,
      replace: file.replace,
      signal,
      ...(file.unclosed ? { unclosed: file.unclosed } : {}),
    });
  }

  #holdBack(file: TrackedFile, code: HeldBackCode, reason: string): void {
    if (file.heldBack?.code === code) {
      file.heldBack.reason = reason;
      file.heldBack.size = file.size;
      return;
    }
    file.heldBack = {
      path: file.path,
      remotePath: escapeRefusedCharacters(file.remotePath),
      bagName: file.bagName,
      code,
      reason,
      size: file.size,
      since: Date.now(),
    };
    this.#heldTracked.add(file);
    this.#announceHeld(file.heldBack);
  }

  #clearHeldBack(file: TrackedFile): void {
    if (!file.heldBack) return;
    file.heldBack = undefined;
    this.#heldTracked.delete(file);
  }

  #holdUntracked(
    filePath: string,
    code: HeldBackCode,
    reason: string,
    extra: { remotePath?: string; bagName?: string; size?: number } = {},
  ): void {
    const existing = this.#heldUntracked.get(filePath);
    if (existing?.code === code) return;
    const rel = this.#relative(filePath);
    const held: HeldBackFile = {
      path: filePath,
      remotePath: extra.remotePath ?? rel,
      bagName: extra.bagName ?? (path.posix.dirname(rel) === '.' ? '' : path.posix.basename(path.posix.dirname(rel))),
      code,
      reason,
      size: extra.size ?? 0,
      since: Date.now(),
    };
    this.#heldUntracked.set(filePath, held);
    this.#announceHeld(held);
  }

  /** Logged at warn once per file and reason; always emitted (the status follows). */
  #announceHeld(held: HeldBackFile): void {
    const key = `${held.code}\0${held.path}`;
    if (!this.#warned.has(key)) {
      this.#warned.add(key);
      this.#options.logger?.warn(
        { file: this.#relative(held.path), code: held.code, reason: held.reason },
        `held back ${JSON.stringify(escapeRefusedCharacters(this.#relative(held.path)))}: ${held.reason}`,
      );
    }
    this.emit('heldBack', held);
  }

  #waitingOf(file: TrackedFile): WaitingFile {
    return {
      path: file.path,
      remotePath: file.remotePath,
      bagName: file.bagName,
      size: file.size,
      phase: file.phase,
      reason: file.heldBack?.reason ?? file.reason,
      firstSeen: file.firstSeen,
      heldBack: file.heldBack?.code,
    };
  }

  #fail(error: unknown): void {
    if (this.#stopped) return;
    this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }
}

/** A folder to descend into: a real folder, not a link (the readdir entry said so; checked again just before). */
async function isRealFolder(dir: string): Promise<boolean> {
  try {
    const stats = await lstat(dir);
    return stats.isDirectory();
  } catch {
    return false;
  }
}

/**
 * Why a file's server path is refused (the protocol's path rule: a control, invisible format or
 * separator character in its name or folder), or undefined. Such a file is held back, never
 * uploaded: the server would refuse it, and a name that displays as another one must not reach
 * a fleet's storage.
 */
function nameRefusal(remotePath: string): string | undefined {
  try {
    normaliseRelativePath(remotePath, 'its name');
    return undefined;
  } catch (error) {
    return `${(error as Error).message}; rename it to upload it`;
  }
}

async function exists(filePath: string): Promise<boolean> {
  try {
    await lstat(filePath);
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` over `items`, at most `limit` at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let item = items[next]; item !== undefined; item = items[next]) {
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
