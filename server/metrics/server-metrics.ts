import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { UploadEventBus } from '../events/upload-events.js';
import type { FleetView } from '../fleet/fleet-view.js';
import type { WebhookHook } from '../sessions/fleet-records.js';
import type { SessionStore } from '../sessions/session-store.js';

const PREFIX = 'ros2_upload_server_';

/** One answered request, as the HTTP layer reports it. */
export interface ObservedRequest {
  method: string;
  /** The route pattern (`/v1/sessions/:id/chunks/:index`), or `unmatched`. */
  route: string;
  status: number;
  /** The error code of an error answer. */
  code: string | undefined;
  seconds: number;
}

export interface ServerMetricsOptions {
  events: UploadEventBus;
  fleet: FleetView;
  store: SessionStore;
  /** Open dashboard event streams. */
  streams: () => number;
}

/** Routes that receive chunks (their refusals count as refused chunks). */
const CHUNK_ROUTES = new Set(['/v1/sessions/:id/chunks/:index', '/upload/chunk']);
/** Routes that complete a file (their durations are the completion latency). */
const COMPLETION_ROUTES: Record<string, string> = {
  '/v1/sessions/:id/complete': 'native',
  '/upload/finalize': 'legacy',
  '/v1/files/*path': 'whole-file',
};

let processRegistry: Registry | undefined;

/**
 * Node's default process metrics (CPU, memory, event loop lag, GC, handles) under their
 * standard names, collected once per process however many servers it runs.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The server's Prometheus metrics (prom-client), in a registry of its own: counters fed by the
 * upload events and the HTTP layer, gauges read from the fleet view and the session store when
 * scraped, plus Node's process metrics. Names follow Prometheus' conventions: the
 * `ros2_upload_server_` prefix, `_total` for counters, base units (`_bytes`, `_seconds`).
 */
export class ServerMetrics {
  readonly #registry = new Registry();
  readonly #requestDuration: Histogram<'method' | 'route' | 'status'>;
  readonly #completionDuration: Histogram<'api'>;
  readonly #chunksRefused: Counter<'reason'>;
  readonly #rateLimited: Counter<'route'>;
  readonly #authFailures: Counter;
  readonly #webhooks: Counter<'hook' | 'outcome'>;

  constructor(options: ServerMetricsOptions) {
    const r = this.#registry;
    const { fleet, store, events } = options;
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
      new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [r] });

    const receivedBytes = counter('received_bytes_total', 'Bytes received and verified (chunks, whole files)', ['api']);
    const chunksReceived = counter('chunks_received_total', 'Chunks received and verified', ['api']);
    this.#chunksRefused = counter('chunks_refused_total', 'Chunk requests refused, by error code', ['reason']);
    const created = counter('sessions_created_total', 'Upload sessions created', ['api']);
    const completed = counter('sessions_completed_total', 'Upload sessions completed (file verified)', ['api']);
    const failed = counter('sessions_failed_total', 'Completions refused, by error code', ['api', 'code']);
    const cancelled = counter('sessions_cancelled_total', 'Sessions cancelled', ['reason']);
    const expired = counter('sessions_expired_total', 'Sessions deleted after sessionExpiry without activity');
    const filesStored = counter('files_stored_total', 'Files newly stored (not already there)', ['api']);
    const storedBytes = counter('stored_bytes_total', 'Bytes of files newly stored', ['api']);
    const bagsCompleted = counter('bags_completed_total', 'Bags that became complete');
    const uploaderBytes = counter('uploader_received_bytes_total', 'Bytes received per uploader', ['uploader']);
    this.#rateLimited = counter('rate_limited_total', 'Requests refused by a rate limit (429)', ['route']);
    this.#authFailures = counter('auth_failures_total', 'Requests refused for a missing or wrong token (401)');
    this.#webhooks = counter('webhook_attempts_total', 'Webhook delivery attempts, by outcome', ['hook', 'outcome']);

    this.#requestDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'HTTP request durations, by route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [r],
    });
    this.#completionDuration = new Histogram({
      name: `${PREFIX}completion_duration_seconds`,
      help: 'Time to complete a file (verify the digest, commit, record), per successful completion request',
      labelNames: ['api'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [r],
    });

    const gauge = <L extends string>(
      name: string,
      help: string,
      collect: (this: Gauge<L>) => void | Promise<void>,
      labelNames: readonly L[] = [],
    ): Gauge<L> => new Gauge({ name: `${PREFIX}${name}`, help, labelNames, registers: [r], collect });

    gauge(
      'sessions_open',
      'Upload sessions open (not complete) whose progress this server process reported last',
      function () {
        this.set(fleet.openUploads);
      },
    );
    gauge('storage_free_bytes', 'Free bytes of the storage (measured every 10 s)', function () {
      this.reset();
      if (fleet.freeBytes !== null) this.set(fleet.freeBytes);
    });
    gauge(
      'bags',
      'Bags by state',
      async function () {
        const counts = await store.fleet.bagCounts();
        this.set({ state: 'complete' }, counts.complete);
        this.set({ state: 'incomplete' }, counts.incomplete);
      },
      ['state'],
    );
    gauge(
      'bag_incomplete_idle_seconds_max',
      'Seconds since the least recently changed incomplete bag last got a file (0 when none is incomplete)',
      async function () {
        const counts = await store.fleet.bagCounts();
        this.set(counts.oldestIncompleteUpdate === null ? 0 : (Date.now() - counts.oldestIncompleteUpdate) / 1000);
      },
    );
    gauge(
      'uploader_last_seen_timestamp_seconds',
      'When each uploader last made a request (Unix time)',
      function () {
        this.reset();
        for (const activity of fleet.activities()) {
          if (activity.stats.lastSeen !== null)
            this.set({ uploader: activity.stats.uploader }, activity.stats.lastSeen / 1000);
        }
      },
      ['uploader'],
    );
    gauge('uploaders_online', 'Uploaders that made a request in the last 2 minutes', function () {
      this.set(fleet.robots().filter((robot) => robot.online).length);
    });
    gauge(
      'webhook_pending',
      'Webhook deliveries waiting (retrying)',
      async function () {
        const pending = await store.fleet.pendingDeliveries();
        this.set({ hook: 'file' }, pending.file);
        this.set({ hook: 'bag' }, pending.bag);
      },
      ['hook'],
    );
    gauge('dashboard_streams', 'Open dashboard event streams (GET /v1/events)', function () {
      this.set(options.streams());
    });

    events.on('chunk-stored', (event) => {
      chunksReceived.inc({ api: event.api });
      receivedBytes.inc({ api: event.api }, event.bytes);
      uploaderBytes.inc({ uploader: event.uploader }, event.bytes);
    });
    events.on('session-created', (event) => created.inc({ api: event.api }));
    events.on('file-completed', (event) => {
      const api = event.sessionId === null ? 'whole-file' : event.api;
      if (event.sessionId !== null) completed.inc({ api });
      if (event.deduplicated) return;
      filesStored.inc({ api });
      storedBytes.inc({ api }, event.size);
      if (event.sessionId === null) {
        receivedBytes.inc({ api }, event.size);
        uploaderBytes.inc({ uploader: event.uploader }, event.size);
      }
    });
    events.on('session-failed', (event) => failed.inc({ api: event.api, code: event.code }));
    events.on('session-cancelled', (event) => cancelled.inc({ reason: event.reason }));
    events.on('session-expired', () => expired.inc());
    events.on('bag-completed', () => bagsCompleted.inc());
  }

  observeRequest(request: ObservedRequest): void {
    const { method, route, status, code, seconds } = request;
    this.#requestDuration.observe({ method, route, status: String(status) }, seconds);
    if (status < 400 && COMPLETION_ROUTES[route] !== undefined && !(route === '/v1/files/*path' && method !== 'PUT'))
      this.#completionDuration.observe({ api: COMPLETION_ROUTES[route] }, seconds);
    if (code === undefined) return;
    if (CHUNK_ROUTES.has(route)) this.#chunksRefused.inc({ reason: code });
    if (code === 'RATE_LIMITED') this.#rateLimited.inc({ route });
    if (code === 'UNAUTHORIZED') this.#authFailures.inc();
  }

  webhookAttempt(hook: WebhookHook, outcome: 'delivered' | 'failed' | 'given_up'): void {
    this.#webhooks.inc({ hook, outcome });
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The exposition text: this server's metrics and the process's. */
  async text(): Promise<string> {
    const [own, process] = await Promise.all([this.#registry.metrics(), processMetrics().metrics()]);
    return `${own}\n${process}`;
  }
}
