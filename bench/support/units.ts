/** Byte and rate formatting for the benchmarks' human-readable lines (IEC units). */
export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * 1024 * 1024;

/** `1 GiB`, `64 KiB`, `12.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [GiB, 'GiB'],
    [MiB, 'MiB'],
    [KiB, 'KiB'],
  ];
  for (const [factor, unit] of units) {
    if (Math.abs(bytes) >= factor) return `${trim(bytes / factor)} ${unit}`;
  }
  return `${bytes} B`;
}

/** MiB/s from bytes and milliseconds. */
export function mibPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? bytes / MiB / (ms / 1000) : 0;
}

/** Rounds for the JSON figures: 3 significant digits for small values, integers above 1000. */
export function fig(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function trim(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
}
