/**
 * What a replica tells the others about its part of the live view (see FleetView and
 * sessions/fleet-bus.ts), as compact JSON: arrays, not objects, and epoch milliseconds. Progress
 * is coalesced by the sender to one item per upload per second, so a message carries what
 * changed since the last one, never a chunk-by-chunk log.
 */

/**
 * An upload's progress as the sender saw it: [id, uploader, path, size, receivedBytes, bytes the
 * sender received since its last report, startedAt, lastChunkAt, completing (1) or not (0)].
 */
export type UploadDelta = [string, string, string, number, number, number, number, number, 0 | 1];
/** [uploader, lastSeen or 0, bytes received, files completed, error answers]: counts since the sender's last report. */
export type RobotDelta = [string, number, number, number, number];
/** A verified file: [uploader, path, size, sha256, completedAt]. */
export type CompletionDelta = [string, string, number, string, number];
/** An error answer: [uploader or null, code, status, message, route, at]. */
export type FailureDelta = [string | null, string, number, string, string, number];
/** A bag whose record changed (read it from the shared database): [uploader, bag]. */
export type BagDelta = [string, string];

export interface FleetDeltas {
  /** Uploads in progress that changed. */
  u?: UploadDelta[];
  /** Sessions that ended (completed, cancelled, expired, dropped). */
  e?: string[];
  r?: RobotDelta[];
  c?: CompletionDelta[];
  f?: FailureDelta[];
  b?: BagDelta[];
  /** The sender is closing: what it last reported is nobody's any more. */
  bye?: 1;
}

type Key = keyof FleetDeltas;
const LIST_KEYS = ['e', 'u', 'r', 'c', 'f', 'b'] as const;

/** Longest failure message carried (the page shows a line; the full one is in the sender's log). */
export const FAILURE_MESSAGE_CHARS = 300;

/**
 * The deltas as messages of at most `maxBytes` UTF-8 bytes each (an empty message is a
 * heartbeat). Ends come first, so a receiver drops an ended upload before anything could show
 * it again. An item too long for any message on its own (a path of 1024 control characters,
 * escaped) is left out and counted in `dropped`.
 */
export function encodeDeltas(deltas: FleetDeltas, maxBytes: number): { messages: string[]; dropped: number } {
  const messages: string[] = [];
  let dropped = 0;
  let current: FleetDeltas = {};
  let size = 2; // "{}"
  const flush = (): void => {
    messages.push(JSON.stringify(current));
    current = {};
    size = 2;
  };
  for (const key of LIST_KEYS) {
    for (const item of deltas[key] ?? []) {
      const text = Buffer.byteLength(JSON.stringify(item));
      // A new key costs `"k":[` and `]`, and a comma after an earlier key; another item a comma.
      const cost = (list: unknown[] | undefined, keys: number): number =>
        list ? text + 1 : text + key.length + 5 + (keys > 0 ? 1 : 0);
      if (cost(undefined, 0) + 2 > maxBytes) {
        dropped += 1;
        continue;
      }
      if (size + cost(current[key], Object.keys(current).length) > maxBytes) flush();
      size += cost(current[key], Object.keys(current).length);
      const lists = current as Record<string, unknown[] | undefined>;
      const list = lists[key] ?? [];
      lists[key] = list;
      list.push(item);
    }
  }
  if (deltas.bye) {
    if (size + 8 > maxBytes) flush();
    current.bye = 1;
  }
  flush();
  return { messages, dropped };
}

/** The deltas of a message, or undefined when it is not one (another version's, or garbage). */
export function decodeDeltas(message: string): FleetDeltas | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const deltas: FleetDeltas = {};
  const record = value as Record<string, unknown>;
  for (const key of LIST_KEYS) {
    const list = record[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return undefined;
    (deltas as Record<Key, unknown>)[key] = list.filter((item) => validItem(key, item));
  }
  if (record.bye === 1) deltas.bye = 1;
  return deltas;
}

const SHAPES: Record<(typeof LIST_KEYS)[number], string> = {
  e: '',
  u: 'sssnnnnnn',
  r: 'snnnn',
  c: 'ssnsn',
  f: '?snssn',
  b: 'ss',
};

function validItem(key: (typeof LIST_KEYS)[number], item: unknown): boolean {
  if (key === 'e') return typeof item === 'string';
  const shape = SHAPES[key];
  if (!Array.isArray(item) || item.length !== shape.length) return false;
  for (let i = 0; i < shape.length; i += 1) {
    const value: unknown = item[i];
    const kind = shape[i];
    if (kind === 's' && typeof value !== 'string') return false;
    if (kind === 'n' && (typeof value !== 'number' || !Number.isFinite(value))) return false;
    if (kind === '?' && value !== null && typeof value !== 'string') return false;
  }
  return true;
}
