import type { Logger } from 'pino';
import { formatDuration, formatSize } from '../../common/config/units.js';
import type { UploadSnapshot } from '../engine/upload-events.js';
import type { UploadAgent } from './upload-agent.js';

/**
 * What the agent says about its work in the log, besides one line per event: every
 * `intervalSeconds`, a progress line for each upload that has run that long ("uploading
 * run1/run1_3.mcap: 11 MiB of 20 MiB (55 %), 1 MiB/s, ETA 9s"), so a long file is never
 * silent; and, at stop, a summary of the run. (On a terminal the CLI shows live progress bars
 * instead of the periodic lines.)
 */
export class ActivityReport {
  readonly #agent: UploadAgent;
  readonly #logger: Logger;
  readonly #startedAt = performance.now();
  #timer: NodeJS.Timeout | undefined;
  /** Bytes sent per upload as last seen, to count what this run sent (not what a resumed session already held). */
  readonly #seen = new Map<string, number>();
  #bytesSent = 0;
  #verified = 0;
  #deduplicated = 0;
  #failed = 0;

  constructor(agent: UploadAgent, logger: Logger, intervalSeconds: number) {
    this.#agent = agent;
    this.#logger = logger;
    const engine = agent.engine;
    engine.on('progress', ({ upload }) => this.#count(upload));
    engine.on('completed', (event) => {
      this.#count(event.upload);
      this.#seen.delete(event.upload.id);
      if (event.deduplicated) this.#deduplicated += 1;
      else this.#verified += 1;
    });
    engine.on('failed', () => {
      this.#failed += 1;
    });
    if (intervalSeconds > 0) {
      this.#timer = setInterval(() => this.#progressLines(intervalSeconds), intervalSeconds * 1000);
      this.#timer.unref();
    }
  }

  /** The run so far, in one sentence. */
  summary(): string {
    const status = this.#agent.status();
    const pending = status.uploads.filter((u) => !['completed', 'failed', 'waiting_for_close'].includes(u.state));
    const failed = status.uploads.filter((u) => u.state === 'failed').length;
    const waiting = status.uploads.filter((u) => u.state === 'waiting_for_close').length;
    const left = pending.reduce((sum, u) => sum + Math.max(0, u.bytesTotal - u.bytesSent), 0);
    const parts = [
      `${this.#verified} file(s) verified (${formatSize(this.#bytesSent)} sent)`,
      ...(this.#deduplicated > 0 ? [`${this.#deduplicated} already on the server`] : []),
      pending.length > 0
        ? `${pending.length} pending (${formatSize(left)} to go; they go on at the next start)`
        : 'nothing pending',
      ...(waiting > 0 ? [`${waiting} waiting to close`] : []),
      `${failed} failed`,
    ];
    return `${formatDuration((performance.now() - this.#startedAt) / 1000)} this run: ${parts.join(', ')}`;
  }

  /** Stops the periodic lines and logs the summary. */
  stop(): void {
    clearInterval(this.#timer);
    this.#logger.info(
      { verified: this.#verified, bytesSent: this.#bytesSent, failed: this.#failed },
      `stopped after ${this.summary()}`,
    );
  }

  #count(upload: UploadSnapshot): void {
    const before = this.#seen.get(upload.id);
    this.#seen.set(upload.id, upload.bytesSent);
    // The first sight of an upload is where it starts in this run (a resumed session's held bytes are not sent again).
    if (before !== undefined && upload.bytesSent > before) this.#bytesSent += upload.bytesSent - before;
  }

  #progressLines(intervalSeconds: number): void {
    const now = Date.now();
    for (const upload of this.#agent.engine.status()) {
      if (upload.state !== 'uploading' && upload.state !== 'retrying' && upload.state !== 'stalled') continue;
      if (!upload.startedAt || now - Date.parse(upload.startedAt) < intervalSeconds * 1000) continue;
      this.#logger.info(
        {
          upload: upload.localPath,
          bytesSent: upload.bytesSent,
          bytesTotal: upload.bytesTotal,
          rate: Math.round(upload.rate),
        },
        describeProgress(upload),
      );
    }
  }
}

/** `uploading run1/run1_3.mcap: 11 MiB of 20 MiB (55 %), 1 MiB/s, ETA 9s`. */
export function describeProgress(upload: UploadSnapshot): string {
  const share = upload.bytesTotal > 0 ? Math.floor((upload.bytesSent / upload.bytesTotal) * 100) : 0;
  const rate = upload.rate > 0 ? `, ${formatSize(Math.round(upload.rate))}/s` : '';
  const eta = upload.rate > 0 && upload.etaSeconds !== undefined ? `, ETA ${formatDuration(upload.etaSeconds)}` : '';
  const state = upload.state === 'uploading' ? 'uploading' : `${upload.state}`;
  const sent = `${formatSize(upload.bytesSent)} of ${formatSize(upload.bytesTotal)}`;
  return `${state} ${upload.remotePath}: ${sent} (${share} %)${rate}${eta}`;
}
