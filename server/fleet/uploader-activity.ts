import type { UploaderStats } from '../sessions/fleet-records.js';
import { RateWindow } from './rate-window.js';

const HOUR_MS = 3_600_000;
/** Error times kept per uploader: enough to count a busy hour, bounded under a flood. */
const MAX_ERRORS_KEPT = 10_000;

/** The server's local date, YYYY-MM-DD: what "today" means in the statistics. */
export function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** What one uploader did: its persisted statistics, plus its live rate and recent errors. */
export class UploaderActivity {
  readonly stats: UploaderStats;
  readonly window = new RateWindow(10);
  /** Times of its error answers, oldest first. */
  readonly #errors: number[] = [];
  /** The statistics changed since they were last saved. */
  dirty = false;

  constructor(stats: UploaderStats) {
    this.stats = stats;
  }

  static fresh(uploader: string, now: number): UploaderActivity {
    return new UploaderActivity({
      uploader,
      lastSeen: null,
      day: localDay(now),
      bytesDay: 0,
      filesDay: 0,
      bytesTotal: 0,
      filesTotal: 0,
    });
  }

  seen(now: number): void {
    // Last-seen is written with the other statistics at most every few seconds, not per request.
    if (this.stats.lastSeen === null || now - this.stats.lastSeen >= 1000) {
      this.stats.lastSeen = now;
      this.dirty = true;
    }
  }

  received(bytes: number, now: number): void {
    this.#rollDay(now);
    this.stats.bytesDay += bytes;
    this.stats.bytesTotal += bytes;
    this.window.add(bytes, now);
    this.seen(now);
    this.dirty = true;
  }

  completedFile(now: number): void {
    this.#rollDay(now);
    this.stats.filesDay += 1;
    this.stats.filesTotal += 1;
    this.dirty = true;
  }

  failed(now: number, count = 1): void {
    for (let i = 0; i < Math.min(count, MAX_ERRORS_KEPT); i += 1) this.#errors.push(now);
    if (this.#errors.length > MAX_ERRORS_KEPT) this.#errors.splice(0, this.#errors.length - MAX_ERRORS_KEPT);
  }

  /**
   * What another server replica reported of this uploader since its last report: the bytes and
   * files it received (counted here too, so every replica shows and saves the fleet's totals),
   * its error answers, and when it last saw the uploader.
   */
  merge(report: { lastSeen: number; bytes: number; files: number; errors: number }, now: number): void {
    if (report.bytes > 0 || report.files > 0) {
      this.#rollDay(now);
      this.stats.bytesDay += report.bytes;
      this.stats.bytesTotal += report.bytes;
      this.stats.filesDay += report.files;
      this.stats.filesTotal += report.files;
      this.window.add(report.bytes, now);
      this.dirty = true;
    }
    if (report.errors > 0) this.failed(now, report.errors);
    if (report.lastSeen > (this.stats.lastSeen ?? 0)) {
      this.stats.lastSeen = report.lastSeen;
      this.dirty = true;
    }
  }

  errorsLastHour(now: number): number {
    let drop = 0;
    while (drop < this.#errors.length && (this.#errors[drop] ?? 0) <= now - HOUR_MS) drop += 1;
    if (drop > 0) this.#errors.splice(0, drop);
    return this.#errors.length;
  }

  /** Today's counts (yesterday's read as 0 until something happens today). */
  today(now: number): { bytes: number; files: number } {
    return this.stats.day === localDay(now)
      ? { bytes: this.stats.bytesDay, files: this.stats.filesDay }
      : { bytes: 0, files: 0 };
  }

  #rollDay(now: number): void {
    const day = localDay(now);
    if (this.stats.day === day) return;
    this.stats.day = day;
    this.stats.bytesDay = 0;
    this.stats.filesDay = 0;
  }
}
