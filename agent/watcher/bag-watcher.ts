import { EventEmitter } from 'node:events';
import { realpathSync, type Dirent, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { UploadError } from '../../common/errors/upload-error.js';
import { escapeRefusedCharacters, normaliseRelativePath } from '../../common/protocol/relative-path.js';
import { classifyFile, createFileFilter, type FileFilter, type FileRole } from './bag-files.js';
import { closingBlocker, closingSignal, isTransientPlain, releasable, type RuleClock } from './closing-rules.js';
import { endsWithMcapMagic } from './mcap-magic.js';
import { scanOpenWriters, type OpenWriterScan } from './open-writers.js';
import { statKey, type ClosingSignal, type FilePhase, type TrackedFile } from './tracked-file.js';

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
}

/** A released file that must not be uploaded after all (it vanished, or its `.zstd` appeared). */
export interface WithdrawnFile {
  path: string;
  remotePath: string;
  reason: string;
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
}

export interface BagWatcherEvents {
  release: [ReleasedFile];
  withdraw: [WithdrawnFile];
  /** A waiting file appeared or changed phase or reason. */
  waiting: [WaitingFile];
  error: [Error];
}

export interface BagWatcherOptions {
  /** The recording root. */
  root: string;
  /** Seconds (see watcher-options.ts). */
  settleTime: number;
  quietPeriod: number;
  rescanInterval: number;
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

const PENDING_MARK_MS = 10 * 60_000;
/** How long a file found held open for writing waits before the next /proc scan for it. */
const HELD_RECHECK_MS = 1000;

/**
 * Watches a recording root and decides, file by file, when a file is closed and may be
 * uploaded, and in which order (see closing-rules.ts for the rules and docs/agent.md "How a split is
 * judged closed"). It never reads a file's content beyond the MCAP end magic and never talks to
 * the network: it emits `release` decisions, and is told back when a file was verified
 * (`uploaded`) or changed during its upload (`changedDuringUpload`).
 *
 * chokidar's events only make it look sooner; every decision comes from stat() of the files,
 * and a periodic rescan catches events the OS dropped.
 */
export class BagWatcher extends EventEmitter<BagWatcherEvents> {
  readonly root: string;
  #options: BagWatcherOptions;
  #filter: FileFilter;
  #rootName: string;
  #files = new Map<string, TrackedFile>();
  #folders = new Map<string, Set<TrackedFile>>();
  #pendingMarks = new Map<string, number>();
  #heldRecheck = new Map<string, { key: string; at: number }>();
  #chokidar: FSWatcher | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #tickAt = Infinity;
  #ticking: Promise<void> | undefined;
  #tickAgain = false;
  #rescanTimer: NodeJS.Timeout | undefined;
  #rescanning: Promise<void> | undefined;
  #stopped = false;
  #started = false;

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

  /** Changes timing settings at run time (the next pass of the rules uses them). */
  setOptions(partial: Partial<Pick<BagWatcherOptions, 'settleTime' | 'quietPeriod' | 'rescanInterval'>>): void {
    const rescanChanged =
      partial.rescanInterval !== undefined && partial.rescanInterval !== this.#options.rescanInterval;
    this.#options = { ...this.#options, ...partial };
    if (rescanChanged && this.#started && !this.#stopped) {
      clearTimeout(this.#rescanTimer);
      this.#scheduleRescan();
    }
    this.#schedule(0);
  }

  /** Watches, then scans the backlog; resolves once the backlog is known. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const watcher = watch(this.root, {
      ignoreInitial: true,
      atomic: false,
      persistent: true,
      ignored: (filePath: string, stats?: Stats) => this.#ignored(filePath, stats),
    });
    this.#chokidar = watcher;
    watcher.on('add', (filePath) => void this.#discover(filePath).catch((error: unknown) => this.#fail(error)));
    watcher.on('change', (filePath) => void this.#discover(filePath).catch((error: unknown) => this.#fail(error)));
    watcher.on('unlink', (filePath) => void this.#recheck(filePath).catch((error: unknown) => this.#fail(error)));
    watcher.on('unlinkDir', () => this.#schedule(0));
    watcher.on('error', (error) =>
      this.#options.logger?.warn({ err: error }, 'file watcher error; the periodic rescan covers it'),
    );
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    await this.rescan();
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
    const matches = [...this.#files.values()].filter(
      (file) => file.name === name && (folder === undefined || this.#folderName(file) === folder),
    );
    for (const file of matches) file.marked = true;
    if (matches.length === 0) this.#pendingMarks.set(`${folder ?? ''}/${name}`, performance.now() + PENDING_MARK_MS);
    this.#schedule(0);
    return matches.length > 0;
  }

  /** The server verified this version of a released file. */
  uploaded(filePath: string, version: { size: number; mtimeMs: number }): void {
    const file = this.#files.get(filePath);
    if (!file) return;
    file.phase = 'uploaded';
    file.replace = false;
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
    file.phase = 'closing';
    file.replace = true;
    file.stableSince = now;
    file.settledSince = now;
    file.magic = undefined;
    file.reason = 'changed during its upload; waiting until it is closed again';
    this.emit('waiting', this.#waitingOf(file));
    this.#schedule(0);
  }

  /** Stop tracking a file the agent deleted or moved. */
  forget(filePath: string): void {
    const file = this.#files.get(filePath);
    if (file) this.#remove(file);
  }

  /** Files seen and not yet released (held back ones included), oldest first. */
  waiting(): WaitingFile[] {
    return [...this.#files.values()]
      .filter(
        (file) =>
          file.phase === 'open' || file.phase === 'closing' || file.phase === 'ready' || file.phase === 'refused',
      )
      .sort((a, b) => a.firstSeen - b.firstSeen)
      .map((file) => this.#waitingOf(file));
  }

  /** Whether the watcher tracks this path (absolute, symlinks resolved), and in which phase. */
  phaseOf(filePath: string): FilePhase | undefined {
    return this.#files.get(filePath)?.phase;
  }

  /** Walks the whole root: finds files that events missed and files that vanished. */
  async rescan(): Promise<void> {
    if (this.#rescanning) return this.#rescanning;
    this.#rescanning = (async () => {
      const seen = new Set<string>();
      await this.#walk(this.root, seen);
      for (const file of [...this.#files.values()]) {
        if (!seen.has(file.path)) await this.#restat(file, performance.now());
      }
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

  async #walk(dir: string, seen: Set<string>): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (dir === this.root) this.#options.logger?.warn({ err: error, dir }, 'cannot read the recording root');
      return;
    }
    for (const entry of entries) {
      if (this.#stopped) return;
      const full = path.join(dir, entry.name);
      const rel = this.#relative(full);
      if (entry.isDirectory()) {
        if (!this.#skipsDir(full, rel)) await this.#walk(full, seen);
      } else if (entry.isFile() && this.#filter.wantsFile(rel)) {
        seen.add(full);
        await this.#discover(full);
      }
    }
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
    if (stats?.isFile()) return !this.#filter.wantsFile(rel);
    return this.#skipsDir(filePath, rel);
  }

  #folderName(file: TrackedFile): string {
    return file.dir === '' ? this.#rootName : path.posix.basename(file.dir);
  }

  /** An unlink event: confirm the file is gone (and withdraw it if it was released). */
  async #recheck(filePath: string): Promise<void> {
    const file = this.#files.get(filePath);
    if (file) await this.#restat(file, performance.now());
    this.#schedule(0);
  }

  /** A file event or a rescan found this path: track it, or notice a new version. */
  async #discover(filePath: string): Promise<void> {
    if (this.#stopped) return;
    const rel = this.#relative(filePath);
    if (rel.startsWith('..') || !this.#filter.wantsFile(rel)) return;
    const existing = this.#files.get(filePath);
    if (existing) {
      await this.#restat(existing, performance.now());
      this.#schedule(existing.phase === 'open' || existing.phase === 'closing' ? 50 : 0);
      return;
    }
    let stats: Stats;
    try {
      stats = await stat(filePath);
    } catch {
      return;
    }
    if (!stats.isFile() || this.#files.has(filePath) || this.#stopped) return;
    const info = classifyFile(rel);
    const now = performance.now();
    const age = Math.max(0, Date.now() - stats.mtimeMs);
    const bagLike =
      info.dir === '' && (info.role === 'metadata' || (info.role === 'split' && info.stem === this.#rootName));
    const remotePath = bagLike ? `${this.#rootName}/${rel}` : rel;
    const version = { size: stats.size, mtimeMs: stats.mtimeMs };
    const refusal = nameRefusal(remotePath);
    const verified = refusal === undefined && (this.#options.isUploaded?.(filePath, version) ?? false);
    const file: TrackedFile = {
      ...info,
      path: filePath,
      relPath: rel,
      remotePath,
      bagName: bagLike ? this.#rootName : info.dir === '' ? '' : path.posix.basename(info.dir),
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      ino: stats.ino,
      stableSince: now,
      settledSince: now - age,
      marked: false,
      signal: undefined,
      phase: refusal !== undefined ? 'refused' : verified ? 'uploaded' : 'open',
      reason: refusal ?? (verified ? 'uploaded' : 'seen'),
      replace: !verified && (this.#options.wasUploaded?.(filePath, { ino: stats.ino }) ?? false),
      magic: undefined,
      firstSeen: Date.now(),
    };
    const markKey = `${this.#folderName(file)}/${file.name}`;
    if (this.#pendingMarks.delete(markKey) || this.#pendingMarks.delete(`/${file.name}`)) file.marked = true;
    this.#files.set(filePath, file);
    const folder = this.#folders.get(file.dir) ?? new Set();
    folder.add(file);
    this.#folders.set(file.dir, folder);
    if (refusal !== undefined)
      this.#options.logger?.warn({ file: escapeRefusedCharacters(filePath), reason: refusal }, 'file held back');
    if (file.phase !== 'uploaded') this.emit('waiting', this.#waitingOf(file));
    if (file.role === 'split' && file.compressed) this.#withdrawTransient(folder);
    this.#schedule(0);
  }

  /** Re-reads a file's size, mtime and inode; notices a vanished file and a changed one. */
  async #restat(file: TrackedFile, now: number): Promise<void> {
    let stats: Stats;
    try {
      stats = await stat(file.path);
    } catch {
      if (this.#files.get(file.path) === file) this.#vanished(file);
      return;
    }
    if (!stats.isFile()) {
      this.#vanished(file);
      return;
    }
    if (stats.size === file.size && stats.mtimeMs === file.mtimeMs && stats.ino === file.ino) return;
    const sameFile = stats.ino === file.ino;
    file.size = stats.size;
    file.mtimeMs = stats.mtimeMs;
    file.ino = stats.ino;
    file.stableSince = now;
    file.settledSince = now;
    file.magic = undefined;
    if (file.phase === 'ready') file.phase = 'closing';
    if (file.phase === 'uploaded') {
      // A verified file was modified afterwards (reindex, an edit): a new version to upload,
      // replacing the old one only if it is the same file and not a new one under the same name.
      file.phase = 'open';
      file.replace = sameFile;
      file.reason = 'changed after it was uploaded';
      this.emit('waiting', this.#waitingOf(file));
    }
  }

  #vanished(file: TrackedFile): void {
    if (file.phase === 'released') {
      this.emit('withdraw', {
        path: file.path,
        remotePath: file.remotePath,
        reason: `${file.relPath} vanished before its upload finished`,
      });
    }
    this.#remove(file);
    this.#schedule(0);
  }

  #remove(file: TrackedFile): void {
    this.#files.delete(file.path);
    this.#heldRecheck.delete(file.path);
    const folder = this.#folders.get(file.dir);
    folder?.delete(file);
    if (folder?.size === 0) this.#folders.delete(file.dir);
  }

  /** Plain splits that gained their `.zstd`: never uploaded; a released one is withdrawn. */
  #withdrawTransient(folder: Set<TrackedFile>): void {
    const files = [...folder];
    for (const file of files) {
      if (file.phase === 'transient' || file.phase === 'uploaded' || !isTransientPlain(file, files)) continue;
      const wasReleased = file.phase === 'released';
      file.phase = 'transient';
      file.reason = `file compression mode: ${file.name}.zstd replaces it`;
      if (wasReleased)
        this.emit('withdraw', {
          path: file.path,
          remotePath: file.remotePath,
          reason: `${file.relPath} was replaced by ${file.name}.zstd (file compression mode)`,
        });
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
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
      this.#tickAt = Infinity;
      this.#ticking = this.#tick()
        .catch((error: unknown) => this.#fail(error))
        .finally(() => {
          this.#ticking = undefined;
          const again = this.#tickAgain;
          this.#tickAgain = false;
          if (again) this.#schedule(0);
          else if (this.#hasActive()) this.#schedule(this.#tickPeriod());
        });
    }, delayMs);
  }

  #tickPeriod(): number {
    return Math.min(500, Math.max(100, this.#quietMs / 4));
  }

  #hasActive(): boolean {
    for (const file of this.#files.values())
      if (file.phase === 'open' || file.phase === 'closing' || file.phase === 'ready') return true;
    return false;
  }

  /** One pass of the rules over every unreleased file. */
  async #tick(): Promise<void> {
    for (const [key, expiry] of this.#pendingMarks) if (expiry < performance.now()) this.#pendingMarks.delete(key);
    // Transient plain splits are re-checked too: their deletion unblocks their .zstd.
    const active = [...this.#files.values()].filter(
      (file) =>
        file.phase === 'open' || file.phase === 'closing' || file.phase === 'ready' || file.phase === 'transient',
    );
    const now = performance.now();
    await Promise.all(active.map((file) => this.#restat(file, now)));
    const clock: RuleClock = { now, settleMs: this.#settleMs };
    const candidates: TrackedFile[] = [];
    for (const folderSet of this.#folders.values()) {
      this.#withdrawTransient(folderSet);
      const folder = [...folderSet];
      for (const file of folder) {
        if (file.phase !== 'open' && file.phase !== 'closing' && file.phase !== 'ready') continue;
        const before = `${file.phase}|${file.reason}`;
        await this.#judge(file, folder, clock, candidates);
        if (`${file.phase}|${file.reason}` !== before && file.phase !== 'ready')
          this.emit('waiting', this.#waitingOf(file));
      }
    }
    if (candidates.length > 0) await this.#confirmNoWriters(candidates);
    if (this.#stopped) return;
    for (const folder of this.#folders.values()) {
      for (const file of releasable([...folder])) this.#release(file);
    }
  }

  async #judge(file: TrackedFile, folder: TrackedFile[], clock: RuleClock, candidates: TrackedFile[]): Promise<void> {
    const signal = closingSignal(file, folder, clock);
    if (!signal) {
      file.phase = 'open';
      file.reason = 'being recorded: no later split, no metadata.yaml, and it changed within the settle time';
      return;
    }
    if (file.phase === 'ready') return; // confirmed and unchanged since (a change sets it back to closing)
    file.phase = 'closing';
    const walExists = file.storage === 'db3' && !file.compressed && (await exists(`${file.path}-wal`));
    const blocker = closingBlocker(file, folder, clock, walExists);
    if (blocker) {
      file.reason = `closing (${signal}), ${blocker}`;
      return;
    }
    if (clock.now - file.stableSince < this.#quietMs) {
      file.reason = `closing (${signal}), waiting for the quiet period`;
      return;
    }
    if (file.storage === 'mcap' && !file.compressed) {
      const key = statKey(file);
      if (file.magic?.key !== key) file.magic = { key, ok: await endsWithMcapMagic(file.path) };
      if (!file.magic.ok) {
        file.reason = `closing (${signal}), no MCAP end magic yet (still being written, or cut short)`;
        return;
      }
    }
    file.signal = signal;
    // A file found held open is looked at again after a pause, not on every pass (one /proc scan
    // costs tens of ms), unless it changes (which restarts its quiet period anyway).
    const recheckAt = this.#heldRecheck.get(file.path);
    if (recheckAt !== undefined && recheckAt.key === statKey(file) && clock.now < recheckAt.at) return;
    file.reason = `closing (${signal}), confirming`;
    candidates.push(file);
  }

  async #confirmNoWriters(candidates: TrackedFile[]): Promise<void> {
    const scan = this.#options.scanWriters ?? scanOpenWriters;
    const result = await scan(candidates.map((file) => file.path));
    for (const file of candidates) {
      const pid = result.held.get(file.path);
      if (pid !== undefined) {
        file.reason = `closing, held open for writing by process ${pid}`;
        this.#heldRecheck.set(file.path, { key: statKey(file), at: performance.now() + HELD_RECHECK_MS });
        continue;
      }
      this.#heldRecheck.delete(file.path);
      file.phase = 'ready';
      file.reason = 'closed; waiting for its turn';
    }
  }

  #release(file: TrackedFile): void {
    file.phase = 'released';
    file.reason = 'released for upload';
    const signal = file.signal ?? 'settled';
    this.#options.logger?.debug({ file: file.relPath, signal, size: file.size }, 'file closed; queued for upload');
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
    });
  }

  #waitingOf(file: TrackedFile): WaitingFile {
    return {
      path: file.path,
      remotePath: file.remotePath,
      bagName: file.bagName,
      size: file.size,
      phase: file.phase,
      reason: file.reason,
      firstSeen: file.firstSeen,
    };
  }

  #fail(error: unknown): void {
    if (this.#stopped) return;
    this.emit('error', error instanceof Error ? error : new Error(String(error)));
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
    return `held back: ${(error as Error).message}; rename it to upload it`;
  }
}

async function exists(filePath: string): Promise<boolean> {
  try {
    await stat(filePath);
    return true;
  } catch {
    return false;
  }
}
