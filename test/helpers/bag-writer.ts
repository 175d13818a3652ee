/**
 * Writes bags the way rosbag2 does, for the watcher's tests: splits that grow over time, the
 * next split created *before* the previous one is closed, metadata.yaml written before the last
 * split is closed, and in file-compression mode a split closed, compressed into `.zstd`, and
 * deleted. It replays the real inotify timelines in test/fixtures/rosbag2-humble/ with the
 * same order and gaps, using the real fixture bags' bytes, and records when it created, wrote,
 * closed and deleted each file (monotonic `performance.now()` ms), so a test can check that
 * nothing was uploaded before it was closed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('../fixtures/rosbag2-humble/', import.meta.url));

/** The three recorded timelines and the fixture bag each one is replayed with. */
export const TIMELINES = {
  mcap: { file: 'timeline-mcap.txt', bag: 'mcap_plain' },
  sqlite3: { file: 'timeline-sqlite3.txt', bag: 'sqlite_plain' },
  'mcap-zstd': { file: 'timeline-mcap-zstd.txt', bag: 'mcap_zstd' },
} as const;

export type TimelineName = keyof typeof TIMELINES;

export const MCAP_MAGIC = Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);

export interface TimelineEvent {
  /** ms since the recording started. */
  t: number;
  /** inotify event names: CREATE, MODIFY, CLOSE_WRITE, DELETE (ISDIR for the folder). */
  events: string[];
  /** `<bag>/<file>` with the timeline's bag name replaced, or `<bag>` for the folder. */
  file: string;
}

/**
 * Parses a timeline file. Its header says whether times are ms or seconds. The timelines name
 * their bag differently (`b`, `mcap_zstd`); every name is rewritten to `bag`, so the fixture
 * bag's bytes can be used: `b_0.mcap` becomes `<bag>/<bag>_0.mcap`.
 */
export function parseTimeline(text: string, bag: string): TimelineEvent[] {
  const seconds = /seconds since start/.test(text);
  const lines = text.split('\n').filter((line) => line.trim() && !line.startsWith('#'));
  let original = '';
  const result: TimelineEvent[] = [];
  for (const line of lines) {
    const [time, events, file] = line.trim().split(/\s+/);
    if (!time || !events || !file) throw new Error(`bad timeline line: ${line}`);
    const names = events.split(',');
    if (names.includes('ISDIR')) {
      original = file;
      result.push({ t: Number(time) * (seconds ? 1000 : 1), events: names, file: bag });
      continue;
    }
    const base = path.posix.basename(file);
    const renamed = base.startsWith(`${original}_`) ? `${bag}_${base.slice(original.length + 1)}` : base;
    result.push({ t: Number(time) * (seconds ? 1000 : 1), events: names, file: `${bag}/${renamed}` });
  }
  return result;
}

export function readTimeline(name: TimelineName): TimelineEvent[] {
  const { file, bag } = TIMELINES[name];
  return parseTimeline(readFileSync(path.join(FIXTURES, file), 'utf8'), bag);
}

/** The fixture bag's files: name → bytes. */
export function fixtureBag(bag: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(path.join(FIXTURES, bag)))
    files.set(name, readFileSync(path.join(FIXTURES, bag, name)));
  return files;
}

/** A plausible unfinished-then-finished MCAP body (the fixtures lack the deleted plain splits). */
export function syntheticMcap(size = 4096): Buffer {
  return Buffer.concat([MCAP_MAGIC, randomBytes(Math.max(0, size - 2 * MCAP_MAGIC.length)), MCAP_MAGIC]);
}

export interface WriteRecord {
  relPath: string;
  createdAt: number;
  /** Every write's time. */
  writes: number[];
  /** When the writer closed it for the last time (undefined while open). */
  closedAt: number | undefined;
  deletedAt: number | undefined;
  /** The bytes it holds once closed. */
  content: Buffer;
}

/** What the writer did and when (performance.now() ms). */
export class WriteLog {
  readonly files = new Map<string, WriteRecord>();

  record(relPath: string): WriteRecord {
    let record = this.files.get(relPath);
    if (!record) {
      record = {
        relPath,
        createdAt: performance.now(),
        writes: [],
        closedAt: undefined,
        deletedAt: undefined,
        content: Buffer.alloc(0),
      };
      this.files.set(relPath, record);
    }
    return record;
  }

  closedAt(relPath: string): number | undefined {
    return this.files.get(relPath)?.closedAt;
  }

  /** Files that exist at the end (not deleted), relative paths. */
  surviving(): string[] {
    return [...this.files.values()].filter((file) => file.deletedAt === undefined).map((file) => file.relPath);
  }
}

interface OpenFile {
  handle: FileHandle;
  content: Buffer;
  /** Bytes written so far. */
  written: number;
  /** Bytes kept back for the close (for MCAP: the summary and end magic). */
  tail: number;
  grow: NodeJS.Timeout | undefined;
  busy: Promise<void>;
}

/**
 * Writes files into a root like a recorder: open, grow in slices, close. Each file's final
 * bytes are given up front; the last quarter (at least 8 bytes, so an MCAP's end magic) is
 * written only on close.
 */
export class BagWriter {
  readonly root: string;
  readonly log = new WriteLog();
  #open = new Map<string, OpenFile>();
  readonly growInterval: number;

  constructor(root: string, options: { growInterval?: number } = {}) {
    this.root = root;
    this.growInterval = options.growInterval ?? 150;
    mkdirSync(root, { recursive: true });
  }

  async mkdir(relPath: string): Promise<void> {
    await mkdir(path.join(this.root, relPath), { recursive: true });
  }

  /** Creates the file, writes its first slice and keeps growing it every growInterval ms. */
  async create(relPath: string, content: Buffer, options: { grow?: boolean } = {}): Promise<void> {
    await mkdir(path.dirname(path.join(this.root, relPath)), { recursive: true });
    const handle = await open(path.join(this.root, relPath), 'w');
    const record = this.log.record(relPath);
    record.createdAt = performance.now();
    record.closedAt = undefined;
    record.content = content;
    const tail = Math.min(content.length, Math.max(8, Math.floor(content.length / 4)));
    const file: OpenFile = { handle, content, written: 0, tail, grow: undefined, busy: Promise.resolve() };
    this.#open.set(relPath, file);
    await this.#write(relPath, file, Math.min(content.length - tail, Math.max(8, Math.ceil(content.length / 16))));
    if (options.grow !== false) {
      const slice = Math.max(1, Math.ceil(content.length / 16));
      file.grow = setInterval(() => {
        if (file.written < file.content.length - file.tail) void this.#write(relPath, file, slice);
      }, this.growInterval);
    }
  }

  /**
   * Writes the next slice of the body (never the tail), as a MODIFY does. Once the body is all
   * written, it rewrites the last slice in place with the same bytes (a writer updating what it
   * wrote): the content stays as planned, but the file is really written to (mtime changes).
   */
  async modify(relPath: string): Promise<void> {
    const file = this.#open.get(relPath);
    if (!file) return;
    const slice = Math.max(1, Math.ceil(file.content.length / 16));
    if (file.written < file.content.length - file.tail) {
      await this.#write(relPath, file, slice);
      return;
    }
    file.busy = file.busy.then(async () => {
      const start = Math.max(0, file.written - slice);
      await file.handle.write(file.content, start, file.written - start, start);
      this.log.record(relPath).writes.push(performance.now());
    });
    await file.busy;
  }

  /** Appends bytes that are not part of the planned content (a writer that keeps writing). */
  async append(relPath: string, bytes: Buffer): Promise<void> {
    const file = this.#open.get(relPath);
    if (!file) throw new Error(`${relPath} is not open`);
    file.busy = file.busy.then(async () => {
      const at = file.written;
      const content = Buffer.concat([file.content.subarray(0, at), bytes, file.content.subarray(at)]);
      await file.handle.write(bytes, 0, bytes.length, at);
      file.written += bytes.length;
      file.content = content;
      this.log.record(relPath).content = content;
      this.log.record(relPath).writes.push(performance.now());
    });
    await file.busy;
  }

  /** Writes whatever is left (including the tail) and closes; records the close time. */
  async close(relPath: string): Promise<void> {
    const file = this.#open.get(relPath);
    if (!file) return;
    clearInterval(file.grow);
    await this.#write(relPath, file, file.content.length);
    await file.busy;
    await file.handle.close();
    this.#open.delete(relPath);
    this.log.record(relPath).closedAt = performance.now();
  }

  /** Writes a whole file at once (open, write, close), as rosbag2 writes metadata.yaml. */
  async writeWhole(relPath: string, content: Buffer): Promise<void> {
    await this.create(relPath, content, { grow: false });
    await this.close(relPath);
  }

  async delete(relPath: string): Promise<void> {
    await unlink(path.join(this.root, relPath));
    this.log.record(relPath).deletedAt = performance.now();
  }

  isOpen(relPath: string): boolean {
    return this.#open.has(relPath);
  }

  /** Closes everything still open (test clean-up). */
  async closeAll(): Promise<void> {
    for (const relPath of [...this.#open.keys()]) await this.close(relPath);
  }

  async #write(relPath: string, file: OpenFile, count: number): Promise<void> {
    file.busy = file.busy.then(async () => {
      const limit = this.#open.has(relPath) ? file.content.length : file.written;
      const end = Math.min(limit, file.written + count);
      if (end <= file.written) return;
      await file.handle.write(file.content, file.written, end - file.written, file.written);
      file.written = end;
      this.log.record(relPath).writes.push(performance.now());
    });
    await file.busy;
  }
}

export interface ReplayOptions {
  /** Multiplies every gap (1 = the recorded gaps). */
  timeScale?: number;
  /**
   * The closing race stretched: after split N+1 is created, keep writing to split N for this
   * many ms before closing it (rosbag2 does the same for 0.2 to 2 ms). Default 0.
   */
  lingerMs?: number;
  /** In file-compression mode, ms between closing a plain split and finishing its `.zstd`. */
  compressMs?: number;
  /** In file-compression mode, ms between closing a plain split and creating its `.zstd` (a slow compressor). */
  compressDelayMs?: number;
  /** Size of the synthetic plain splits of the compression timeline. */
  plainSize?: number;
  growInterval?: number;
}

/**
 * Replays a recorded timeline into `root` with the fixture bag's bytes: the same events in the
 * same order, with the same gaps. Plain splits of the compression timeline, which the fixture
 * does not have (rosbag2 deleted them), get synthetic MCAP bytes. Resolves when every file is
 * closed; the returned writer's log says when each was.
 */
export async function replayTimeline(
  name: TimelineName,
  root: string,
  options: ReplayOptions = {},
): Promise<BagWriter> {
  const { bag } = TIMELINES[name];
  const events = readTimeline(name);
  const fixture = fixtureBag(bag);
  const writer = new BagWriter(root, { growInterval: options.growInterval ?? 150 });
  const scale = options.timeScale ?? 1;
  const start = performance.now();
  const lingering: Promise<void>[] = [];
  const created: string[] = [];
  const plain = new Map<string, Buffer>();
  const contentOf = (relPath: string): Buffer => {
    const real = fixture.get(path.posix.basename(relPath));
    if (real) return real;
    if (!plain.has(relPath)) plain.set(relPath, syntheticMcap(options.plainSize));
    return plain.get(relPath)!;
  };
  for (const event of events) {
    const wait = start + event.t * scale - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const kinds = new Set(event.events);
    if (kinds.has('ISDIR')) {
      await writer.mkdir(event.file);
    } else if (kinds.has('CREATE')) {
      if (event.file.endsWith('.zstd') && options.compressDelayMs)
        await new Promise((resolve) => setTimeout(resolve, options.compressDelayMs));
      if (event.file.endsWith('.zstd') && options.compressMs) {
        // Compression takes a while: the .zstd grows, then the plain split is deleted.
        await writer.create(event.file, contentOf(event.file));
        await new Promise((resolve) => setTimeout(resolve, options.compressMs));
      } else {
        await writer.create(event.file, contentOf(event.file), { grow: !event.file.endsWith('metadata.yaml') });
      }
      created.push(event.file);
    } else if (kinds.has('CLOSE_WRITE')) {
      const isSplit = /_\d+\.(mcap|db3)$/.test(event.file);
      const hasNext = created.some(
        (other) =>
          other !== event.file && /_\d+\.(mcap|db3)$/.test(other) && splitIndex(other) > splitIndex(event.file),
      );
      if (options.lingerMs && isSplit && hasNext) {
        const file = event.file;
        lingering.push(
          (async () => {
            const until = performance.now() + options.lingerMs!;
            while (performance.now() < until) {
              await writer.modify(file);
              await new Promise((resolve) => setTimeout(resolve, writer.growInterval));
            }
            await writer.close(file);
          })(),
        );
      } else {
        await writer.close(event.file);
      }
    } else if (kinds.has('DELETE')) {
      await writer.delete(event.file);
    } else if (kinds.has('MODIFY')) {
      await writer.modify(event.file);
    }
  }
  await Promise.all(lingering);
  await writer.closeAll();
  return writer;
}

function splitIndex(relPath: string): number {
  return Number(/_(\d+)\.(mcap|db3)/.exec(relPath)?.[1] ?? -1);
}
