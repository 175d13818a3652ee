import type {
  BagView,
  CompletionView,
  FailureView,
  FleetSnapshot,
  FleetUpdate,
  RobotView,
  UploadView,
} from '../../common/protocol/fleet-views.js';

/**
 * A dashboard page without a browser: follows GET /v1/events (server-sent events) and applies
 * the snapshot and every update as the page does, keeping what a test asks about afterwards:
 * the current uploads, robots and bags, every completion and failure received, and each
 * upload's history (every view of it the stream carried, and when it was removed).
 */
export interface FleetStream {
  /** The snapshot the stream started with. */
  readonly snapshot: Promise<FleetSnapshot>;
  readonly uploads: Map<string, UploadView>;
  readonly robots: Map<string, RobotView>;
  /** By `uploader/bag`. */
  readonly bags: Map<string, BagView>;
  /** Every completion received (the snapshot's, then the updates'), in order. */
  readonly completions: CompletionView[];
  readonly failures: FailureView[];
  /** Every view of each upload, in order. */
  readonly history: Map<string, UploadView[]>;
  /** Upload ids the stream said were no longer in progress, with when (Date.now()). */
  readonly removed: Map<string, number>;
  /** Updates received. */
  readonly updates: number;
  /** Set when the stream ended or failed. */
  readonly ended: Error | undefined;
  close(): void;
}

export async function openFleetStream(base: string, viewerToken: string): Promise<FleetStream> {
  const abort = new AbortController();
  const answer = await fetch(`${base}/v1/events`, {
    headers: { authorization: `Bearer ${viewerToken}` },
    signal: abort.signal,
  });
  if (answer.status !== 200 || !answer.body) throw new Error(`GET /v1/events answered ${answer.status}`);
  const reader = answer.body.getReader();
  let resolveSnapshot: (snapshot: FleetSnapshot) => void = () => undefined;
  let rejectSnapshot: (error: Error) => void = () => undefined;
  const snapshot = new Promise<FleetSnapshot>((resolve, reject) => {
    resolveSnapshot = resolve;
    rejectSnapshot = reject;
  });
  snapshot.catch(() => undefined);
  let updates = 0;
  let ended: Error | undefined;
  const stream = {
    snapshot,
    uploads: new Map<string, UploadView>(),
    robots: new Map<string, RobotView>(),
    bags: new Map<string, BagView>(),
    completions: [] as CompletionView[],
    failures: [] as FailureView[],
    history: new Map<string, UploadView[]>(),
    removed: new Map<string, number>(),
    get updates() {
      return updates;
    },
    get ended() {
      return ended;
    },
    close: () => abort.abort(),
  };
  const upload = (view: UploadView): void => {
    stream.uploads.set(view.id, view);
    stream.history.set(view.id, [...(stream.history.get(view.id) ?? []), view]);
  };
  const apply = (event: string, data: FleetSnapshot | FleetUpdate): void => {
    for (const view of data.robots) stream.robots.set(view.uploader, view);
    for (const view of data.uploads) upload(view);
    for (const view of data.bags) stream.bags.set(`${view.uploader}/${view.bag}`, view);
    stream.completions.push(...data.completions);
    stream.failures.push(...data.failures);
    if (event === 'update') {
      updates += 1;
      for (const id of (data as FleetUpdate).removedUploads) {
        stream.uploads.delete(id);
        stream.removed.set(id, Date.now());
      }
    }
  };
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || !data) continue;
        const parsed = JSON.parse(data) as FleetSnapshot | FleetUpdate;
        apply(event, parsed);
        if (event === 'snapshot') resolveSnapshot(parsed as FleetSnapshot);
      }
    }
  })().catch((error: unknown) => {
    ended = error instanceof Error ? error : new Error(String(error));
    rejectSnapshot(ended);
  });
  return stream;
}
