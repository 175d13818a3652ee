import { present } from '../../common/errors/present.js';
import type { FilePhase, TrackedFile } from './tracked-file.js';

/**
 * One folder's files, indexed once and kept up to date on every change, so that each question the
 * closing rules and the release order ask is answered in O(1) or O(log n) instead of by scanning
 * the folder (a day of one-minute splits is 1,440 files in one folder; a week offline, tens of
 * thousands): does a later split of this stem exist, is there a metadata.yaml, what is this
 * split's `.zstd` (or plain) sibling, which splits may go next, has every file but metadata.yaml
 * been verified.
 *
 * The watcher changes a tracked file's phase only through `setPhase`, which keeps the counts and
 * the release cursors right.
 */
export class FolderIndex {
  /** Folder relative to the watch root ('' for the root itself). */
  readonly dir: string;
  readonly #files = new Set<TrackedFile>();
  readonly #stems = new Map<string, StemSplits>();
  /** `stem|index|storage|compressed` → split. */
  readonly #splits = new Map<string, TrackedFile>();
  #metadata: TrackedFile | undefined;
  /** Files being confirmed or waiting for their turn (open, closing, ready). */
  readonly #active = new Set<TrackedFile>();
  /** Files that are neither splits nor metadata.yaml, ready to go (they keep no order). */
  readonly #readyOthers = new Set<TrackedFile>();
  /** Files metadata.yaml waits for: every other file that is not transient and not yet verified. */
  #unverified = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  get size(): number {
    return this.#files.size;
  }

  get files(): ReadonlySet<TrackedFile> {
    return this.#files;
  }

  /** Files being recorded, confirmed closed or waiting for their turn. */
  get active(): ReadonlySet<TrackedFile> {
    return this.#active;
  }

  get metadata(): TrackedFile | undefined {
    return this.#metadata;
  }

  /** How many files metadata.yaml still waits for. */
  get unverified(): number {
    return this.#unverified;
  }

  /** Adds a file (its phase already set). */
  add(file: TrackedFile): void {
    this.#files.add(file);
    if (file.role === 'metadata') this.#metadata = file;
    if (file.role === 'split') {
      this.#splits.set(splitKey(file, file.compressed), file);
      let stem = this.#stems.get(file.stem ?? '');
      if (!stem) {
        stem = new StemSplits();
        this.#stems.set(file.stem ?? '', stem);
      }
      stem.insert(file);
    }
    this.#count(file, file.phase, +1);
  }

  remove(file: TrackedFile): void {
    if (!this.#files.delete(file)) return;
    if (this.#metadata === file) this.#metadata = undefined;
    if (file.role === 'split') {
      if (this.#splits.get(splitKey(file, file.compressed)) === file)
        this.#splits.delete(splitKey(file, file.compressed));
      const stem = this.#stems.get(file.stem ?? '');
      stem?.remove(file);
      if (stem?.length === 0) this.#stems.delete(file.stem ?? '');
    }
    this.#count(file, file.phase, -1);
  }

  /** The one way a tracked file's phase changes. */
  setPhase(file: TrackedFile, phase: FilePhase): void {
    const before = file.phase;
    if (before === phase) return;
    this.#count(file, before, -1);
    file.phase = phase;
    this.#count(file, phase, +1);
    if (file.role === 'split' && !isDone(phase)) this.#stems.get(file.stem ?? '')?.undone(file);
  }

  /** Whether a split of the same stem with a higher index exists (`_10` after `_9`). */
  laterSplitExists(file: TrackedFile): boolean {
    if (file.role !== 'split') return false;
    const stem = this.#stems.get(file.stem ?? '');
    return stem !== undefined && stem.maxIndex > (file.index ?? 0);
  }

  /** The highest split of a stem (the one whose "later split" signal a removal can take away). */
  lastSplit(stem: string): TrackedFile | undefined {
    return this.#stems.get(stem)?.last;
  }

  /** The same split (stem, index, storage) in the other form: `x_1.mcap` ↔ `x_1.mcap.zstd`. */
  sibling(file: TrackedFile, compressed: boolean): TrackedFile | undefined {
    if (file.role !== 'split') return undefined;
    const other = this.#splits.get(splitKey(file, compressed));
    return other === file ? undefined : other;
  }

  /** Whether a split of this stem was compressed (file-compression mode is on for the bag). */
  stemCompressed(stem: string): boolean {
    return (this.#stems.get(stem)?.compressed ?? 0) > 0;
  }

  /**
   * The files to hand to the engine now, in order. Splits of one stem go strictly in index order:
   * a split goes only when every earlier one is released, uploaded or transient. Other files go
   * when ready. metadata.yaml goes last, once every other file of the folder was verified by the
   * server, so a receiver knows the bag is complete when it arrives.
   */
  releasable(): TrackedFile[] {
    const result: TrackedFile[] = [];
    for (const stem of this.#stems.values()) stem.collectReady(result);
    for (const file of this.#readyOthers) result.push(file);
    const metadata = this.#metadata;
    if (metadata?.phase === 'ready' && this.#unverified === 0) result.push(metadata);
    return result;
  }

  #count(file: TrackedFile, phase: FilePhase, delta: 1 | -1): void {
    const add = delta > 0;
    if (phase === 'open' || phase === 'closing' || phase === 'ready') {
      if (add) this.#active.add(file);
      else this.#active.delete(file);
    }
    if (file.role === 'other' && phase === 'ready') {
      if (add) this.#readyOthers.add(file);
      else this.#readyOthers.delete(file);
    }
    if (file.role !== 'metadata' && phase !== 'transient' && phase !== 'uploaded') this.#unverified += delta;
  }
}

/** A split no longer blocks the ones after it once it is released, uploaded or transient. */
function isDone(phase: FilePhase): boolean {
  return phase === 'transient' || phase === 'released' || phase === 'uploaded';
}

function splitKey(file: TrackedFile, compressed: boolean): string {
  return `${file.stem}\0${file.index}\0${file.storage}\0${compressed ? 1 : 0}`;
}

/** Index order; at one index the `.zstd` first (it replaces its plain split), then by name. */
function splitOrder(a: TrackedFile, b: TrackedFile): number {
  return (
    (a.index ?? 0) - (b.index ?? 0) ||
    Number(b.compressed) - Number(a.compressed) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

/**
 * One stem's splits, sorted, with a cursor: every split before it is done (released, uploaded or
 * transient), so the next release pass starts there instead of at split 0.
 */
class StemSplits {
  readonly #sorted: TrackedFile[] = [];
  #cursor = 0;
  /** How many of them are `.zstd` (file-compression output). */
  compressed = 0;

  get length(): number {
    return this.#sorted.length;
  }

  get maxIndex(): number {
    return this.last?.index ?? -1;
  }

  get last(): TrackedFile | undefined {
    return this.#sorted[this.#sorted.length - 1];
  }

  insert(file: TrackedFile): void {
    const at = this.#search(file);
    this.#sorted.splice(at, 0, file);
    if (file.compressed) this.compressed += 1;
    if (at < this.#cursor) {
      if (isDone(file.phase)) this.#cursor += 1;
      else this.#cursor = at;
    }
  }

  remove(file: TrackedFile): void {
    const at = this.#indexOf(file);
    if (at < 0) return;
    this.#sorted.splice(at, 1);
    if (file.compressed) this.compressed -= 1;
    if (at < this.#cursor) this.#cursor -= 1;
  }

  /** A split went back to a phase that blocks the ones after it. */
  undone(file: TrackedFile): void {
    const at = this.#indexOf(file);
    if (at >= 0 && at < this.#cursor) this.#cursor = at;
  }

  /** Appends the ready splits that may go now, in order. */
  collectReady(out: TrackedFile[]): void {
    const sorted = this.#sorted;
    for (let split = sorted[this.#cursor]; split && isDone(split.phase); split = sorted[this.#cursor])
      this.#cursor += 1;
    for (let i = this.#cursor, split = sorted[i]; split; i += 1, split = sorted[i]) {
      if (isDone(split.phase)) continue;
      if (split.phase !== 'ready') return;
      out.push(split);
    }
  }

  /** Where `file` goes (binary search). */
  #search(file: TrackedFile): number {
    let low = 0;
    let high = this.#sorted.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (splitOrder(present(this.#sorted[middle], 'a split inside the sorted list'), file) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #indexOf(file: TrackedFile): number {
    const at = this.#search(file);
    return this.#sorted[at] === file ? at : -1;
  }
}
