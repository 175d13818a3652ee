import { isUploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { isDiskFull } from '../storage/disk-full.js';
import { endSession, sessionEventOf } from '../uploads/cancel-session.js';
import type { UploadContext } from '../uploads/upload-context.js';

/**
 * Deletes sessions with no activity for `sessionExpiry`, with their data; completed sessions'
 * tombstones go too (the stored files stay). Runs every `cleanupInterval`.
 */
export class ExpirySweeper {
  readonly #context: UploadContext;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(context: UploadContext) {
    this.#context = context;
    this.#log = context.log;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.sweep().catch((error: unknown) =>
        this.#log.error({ event: 'expiry_failed', err: error }, 'Looking for expired sessions failed'),
      );
    }, this.#context.config.cleanupInterval * 1000);
    this.#timer.unref();
  }

  /** One pass; concurrent calls share it. */
  sweep(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  async #sweep(): Promise<void> {
    const { store, runtimes } = this.#context;
    const now = Date.now();
    runtimes.dropIdle(now);
    // Page by page, so 100,000 abandoned sessions are never loaded at once; sessions that cannot
    // go yet (being completed, receiving) are skipped until the next sweep.
    const skipped = new Set<string>();
    for (;;) {
      const page = (await store.expiredSessions(now, SWEEP_PAGE + skipped.size)).filter((s) => !skipped.has(s.id));
      if (page.length === 0) return;
      for (const session of page) {
        try {
          const runtime = await runtimes.find(session.id);
          if (!runtime) continue;
          if (
            runtime.record.state === 'completing' ||
            runtime.inFlight.size > 0 ||
            runtime.record.expiresAt > Date.now()
          ) {
            skipped.add(session.id);
            continue;
          }
          await endSession(this.#context, runtime);
          if (session.state !== 'complete') {
            this.#log.info(
              { event: 'session_expired', sessionId: session.id, uploader: session.uploader, path: session.path },
              `Expired upload of ${session.path}; its data was deleted`,
            );
            this.#context.events.emit('session-expired', sessionEventOf(runtime));
          }
        } catch (error) {
          skipped.add(session.id);
          if (isUploadError(error, 'INSUFFICIENT_STORAGE') || isDiskFull(error))
            this.#log.warn(
              { event: 'storage_full', sessionId: session.id, err: error },
              'Deleting an expired session waits for disk space (its database or disk is full)',
            );
          else
            this.#log.error(
              { event: 'expiry_failed', sessionId: session.id, err: error },
              'Deleting an expired session failed',
            );
        }
      }
    }
  }
}

/** Expired sessions looked at per query. */
const SWEEP_PAGE = 500;
