import type {
  BagView,
  CompletionView,
  FailureView,
  FleetSnapshot,
  FleetUpdate,
  RobotView,
  ServerView,
  UploadView,
} from '../../../common/protocol/fleet-views.js';

const RECENT = 50;

/** The parts of the page a message can change; only those are drawn again. */
export type Section = 'robots' | 'uploads' | 'bags' | 'completions' | 'failures';

export function bagKey(bag: Pick<BagView, 'uploader' | 'bag'>): string {
  return `${bag.uploader}/${bag.bag}`;
}

/** The page's copy of the fleet view: a snapshot, then updates merged into it by key. */
export class FleetState {
  viewer = '';
  server: ServerView | undefined;
  /** Server time minus this browser's, so "ago" is right on a browser with a wrong clock. */
  clockOffsetMs = 0;
  readonly robots = new Map<string, RobotView>();
  readonly uploads = new Map<string, UploadView>();
  readonly bags = new Map<string, BagView>();
  completions: CompletionView[] = [];
  failures: FailureView[] = [];
  /** Sections changed since the page last drew them. */
  readonly dirty = new Set<Section>();

  apply(message: FleetSnapshot | FleetUpdate): void {
    this.clockOffsetMs = Date.parse(message.at) - Date.now();
    this.server = message.server;
    if (message.type === 'snapshot') {
      this.viewer = message.viewer;
      this.robots.clear();
      this.uploads.clear();
      this.bags.clear();
      this.completions = [];
      this.failures = [];
    }
    const all = message.type === 'snapshot';
    if (all || message.robots.length > 0) this.dirty.add('robots');
    if (all || message.uploads.length > 0 || message.removedUploads.length > 0) this.dirty.add('uploads');
    if (all || message.bags.length > 0) this.dirty.add('bags');
    if (all || message.completions.length > 0) this.dirty.add('completions');
    if (all || message.failures.length > 0) this.dirty.add('failures');
    for (const robot of message.robots) this.robots.set(robot.uploader, robot);
    for (const upload of message.uploads) this.uploads.set(upload.id, upload);
    if (message.type === 'update') for (const id of message.removedUploads) this.uploads.delete(id);
    for (const bag of message.bags) this.bags.set(bagKey(bag), bag);
    this.completions = mergeRecent(
      this.completions,
      message.completions,
      (c) => `${c.uploader}/${c.path}/${c.completedAt}`,
    );
    this.failures = mergeRecent(this.failures, message.failures, (f) => String(f.id));
  }

  now(): number {
    return Date.now() + this.clockOffsetMs;
  }
}

/** Newest first, without duplicates (an update may repeat what the snapshot had), at most RECENT. */
function mergeRecent<T>(current: T[], incoming: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  const merged: T[] = [];
  for (const item of [...incoming, ...current]) {
    const k = key(item);
    if (seen.has(k)) continue;
    seen.add(k);
    merged.push(item);
    if (merged.length >= RECENT) break;
  }
  return merged;
}
