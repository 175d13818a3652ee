import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Linux's clock ticks per second (utime and stime in /proc/<pid>/stat count these). */
const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** One field of /proc/<pid>/status in KiB (VmHWM = peak RSS, VmRSS = now), or undefined when the process is gone. */
export function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    const value = line ? Number(/(\d+)\s*kB/.exec(line)?.[1]) : Number.NaN;
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a running process (from /proc/<pid>/stat), or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: fields follow the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Polls a process's VmHWM (the kernel's own peak, so a poll never misses a short spike that
 * happened before it) every `intervalMs`; `peakKiB` is the last value read while the process
 * lived. Used as a fallback for processes that die without reporting (kill -9) and to watch the
 * server, which keeps running.
 */
export class PeakRssWatcher {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #peak = 0;

  constructor(pid: number, intervalMs = 100) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
    this.sample();
  }

  sample(): number {
    const value = statusKiB(this.#pid, 'VmHWM');
    if (value !== undefined && value > this.#peak) this.#peak = value;
    return this.#peak;
  }

  get peakKiB(): number {
    return this.#peak;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
