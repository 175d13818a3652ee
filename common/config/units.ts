/**
 * Sizes and durations as people write them. Sizes follow IEC/SI strictly: `k`/`kB` = 1000,
 * `KiB` = 1024, `M`/`MB` = 10^6, `MiB` = 2^20, and so on; a bare number is bytes. Durations are
 * in seconds everywhere in this project (as in the legacy dashboard's knobs: `upload_timeout = 300`); a bare
 * number is seconds and `500ms`, `30s`, `5m`, `2h`, `7d` or `1h30m` are accepted.
 */

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
};

const durationUnits: Record<string, number> = {
  ms: 0.001,
  s: 1,
  sec: 1,
  m: 60,
  min: 60,
  h: 3600,
  d: 86400,
};

/** Parses `2MiB`, `500k`, `1.5GiB` or `1048576` into bytes. Returns undefined if it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:\/s)?\s*$/.exec(text);
  if (!match) return undefined;
  const [, amount, unit = ''] = match;
  const factor = sizeUnits[unit.toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Number(amount) * factor;
  return Number.isFinite(bytes) ? Math.round(bytes) : undefined;
}

/** Parses `30s`, `5m`, `500ms`, `1h30m` or `2.5` (seconds) into seconds. Undefined if not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const part = /(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    const factor = durationUnits[match[2] ?? ''];
    if (factor === undefined) return undefined; // the pattern lists only known units
    total += Number(match[1]) * factor;
    consumed = part.lastIndex;
  }
  return consumed > 0 && consumed === trimmed.length ? total : undefined;
}

/** `8388608` → `8 MiB`, `1536` → `1.5 KiB`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = unit === 0 ? String(value) : value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2).replace(/\.?0+$/, '');
  return `${text} ${units[unit]}`;
}

/** `90` → `1m30s`, `0.25` → `250ms`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '∞';
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join('');
}

/** Seconds as people read them in a log: `0.98`, `12.3`, `340` (two significant decimals below 10 s). */
export function roundSeconds(seconds: number): number {
  if (!Number.isFinite(seconds)) return seconds;
  if (Math.abs(seconds) >= 100) return Math.round(seconds);
  if (Math.abs(seconds) >= 10) return Math.round(seconds * 10) / 10;
  return Math.round(seconds * 100) / 100;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * 1024 * 1024;
