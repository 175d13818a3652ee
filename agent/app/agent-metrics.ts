import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventEmitter } from 'node:events';
import type { NetworkManagerEvents, UploadSnapshot } from '../engine/upload-events.js';
import type { AgentStatus } from './agent-controller.js';
import { oldestPendingSeconds, recordingToVerifiedSeconds } from './upload-latency.js';

const PREFIX = 'ros2_upload_agent_';

/**
 * Buckets of the recording-to-verified latency, in seconds: from seconds (a split uploaded
 * as soon as it closed) to a day (a robot that was offline overnight).
 */
const LATENCY_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

/** States of an upload that is not finished, as the queue gauge labels them. */
const PENDING_STATES = ['waiting_for_close', 'queued', 'uploading', 'retrying', 'stalled', 'paused'] as const;

export interface AgentMetricsSource {
  /** The engine (NetworkManager), whose events feed the counters. */
  engine: EventEmitter<NetworkManagerEvents>;
  status(): AgentStatus;
}

/**
 * The agent's Prometheus metrics (`--metrics-listen`): counters fed by the engine's events,
 * gauges read from the agent's status when scraped, the recording-to-verified latency of each
 * split as a histogram, and Node's process metrics. Prometheus naming: the
 * `ros2_upload_agent_` prefix, `_total` for counters, base units (`_bytes`, `_seconds`).
 */
export class AgentMetrics {
  readonly #registry = new Registry();
  /** transferredBytes last counted per unfinished upload. */
  readonly #sent = new Map<string, number>();
  readonly #sentBytes: Counter;
  readonly #retries: Counter;
  readonly #stalls: Counter;
  readonly #completed: Counter<'deduplicated'>;
  readonly #failed: Counter<'code'>;
  readonly #latency: Histogram;

  constructor(source: AgentMetricsSource) {
    const registers = [this.#registry];
    collectDefaultMetrics({ register: this.#registry });
    this.#sentBytes = new Counter({
      name: `${PREFIX}sent_bytes_total`,
      help: 'File bytes sent to the server, chunks sent again after a failure included',
      registers,
    });
    this.#retries = new Counter({
      name: `${PREFIX}retries_total`,
      help: 'Requests retried after a failure (network error, timeout, server busy)',
      registers,
    });
    this.#stalls = new Counter({
      name: `${PREFIX}stalls_total`,
      help: 'Uploads that stopped moving for longer than the stall timeout',
      registers,
    });
    this.#completed = new Counter({
      name: `${PREFIX}files_completed_total`,
      help: 'Files the server verified (deduplicated="true": it already held the content)',
      labelNames: ['deduplicated'],
      registers,
    });
    this.#failed = new Counter({
      name: `${PREFIX}files_failed_total`,
      help: 'Uploads that failed for good, by error code',
      labelNames: ['code'],
      registers,
    });
    this.#latency = new Histogram({
      name: `${PREFIX}recording_to_verified_seconds`,
      help: "Seconds from a split's closing on the robot (its modification time) to its verification on the server",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    let status: AgentStatus | undefined;
    /** One status per scrape, however many gauges read it. */
    const current = (): AgentStatus => {
      status ??= source.status();
      queueMicrotask(() => {
        status = undefined;
      });
      return status;
    };
    const gauge = (name: string, help: string, read: (s: AgentStatus) => number): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(read(current()));
        },
      });
    };
    new Gauge({
      name: `${PREFIX}queue_files`,
      help: 'Files not yet verified by the server, by state (waiting_for_close: still being recorded)',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<string, number>(PENDING_STATES.map((state) => [state, 0]));
        for (const upload of current().uploads)
          if (counts.has(upload.state)) counts.set(upload.state, (counts.get(upload.state) ?? 0) + 1);
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
    gauge('pending_bytes', 'Bytes the server has not acknowledged yet, over every pending file', (s) => s.bytesPending);
    gauge('rate_bytes_per_second', 'Current send rate over every upload', (s) =>
      s.uploads.reduce((sum, upload) => sum + (upload.state === 'uploading' ? upload.rate : 0), 0),
    );
    gauge('bandwidth_limit_bytes_per_second', 'Bandwidth limit in force (0 = unlimited)', (s) => s.bandwidthLimit);
    gauge('online', '1 while the server is reachable, 0 while the agent waits for it', (s) => (s.online ? 1 : 0));
    gauge('paused', '1 while uploads are paused', (s) => (s.paused ? 1 : 0));
    gauge('oldest_pending_seconds', 'Age of the oldest closed file not yet verified (since it closed)', (s) =>
      oldestPendingSeconds(s),
    );
    gauge('disk_free_bytes', 'Free bytes on the recording volume (-1 when unknown)', (s) => s.freeDiskBytes ?? -1);
    gauge(
      'problems',
      'Problems that stop every upload now (state disk full, refused certificate)',
      (s) => s.problems.length,
    );

    source.engine.on('progress', ({ upload }) => this.#progress(upload));
    source.engine.on('retrying', () => this.#retries.inc());
    source.engine.on('stalled', () => this.#stalls.inc());
    source.engine.on('completed', ({ upload, deduplicated }) => {
      this.#progress(upload);
      this.#sent.delete(upload.id);
      this.#completed.inc({ deduplicated: String(deduplicated) });
      const latency = recordingToVerifiedSeconds(upload);
      if (latency !== undefined) this.#latency.observe(latency);
    });
    source.engine.on('failed', ({ upload, code }) => {
      this.#sent.delete(upload.id);
      this.#failed.inc({ code });
    });
    source.engine.on('cancelled', (upload) => this.#sent.delete(upload.id));
  }

  /** The Prometheus text exposition and its content type. */
  async text(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.#registry.contentType, text: await this.#registry.metrics() };
  }

  #progress(upload: UploadSnapshot): void {
    const now = upload.transferredBytes ?? 0;
    const before = this.#sent.get(upload.id) ?? 0;
    if (now > before) {
      this.#sentBytes.inc(now - before);
      this.#sent.set(upload.id, now);
    }
  }
}
