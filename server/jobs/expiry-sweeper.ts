import { isUploadError } from '../../common/errors/upload-error.js';
import type { Logger } from '../logging/logger.js';
import { isDiskFull } from '../storage/disk-full.js';
import { endSession, sessionEventOf } from '../uploads/cancel-session.js';
import type { UploadContext } from '../uploads/upload-context.js';
import { sweepOrphanStaging } from './startup-recovery.js';

/** How the sweep runs where server replicas share the database. */
export interface SweepCoordination {
  /** Runs the sweep unless another replica runs it now (then resolves undefined). */
  runAlone: <T>(name: string, task: () => Promise<T>) => Promise<T | undefined>;
  /** More housekeeping of the shared store, run with the sweep. */
  housekeeping?: () => Promise<void>;
  /** Also delete staged data of no session (replicas never restart all at once, so start-up alone is not enough). */
  sweepOrphans: boolean;
}

/**
 * Deletes sessions with no activity for `sessionExpiry`, with their data; completed sessions'
 * tombstones go too (the stored files stay). Runs every `cleanupInterval`; with server
 * replicas in one replica at a time (the first to take the job's lock; the others skip the round).
 */
export class ExpirySweeper {
  readonly #context: UploadContext;
  readonly #log: Logger;
  readonly #coordination: SweepCoordination;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    context: UploadContext,
    coordination: SweepCoordination = { runAlone: (_name, task) => task(), sweepOrphans: false },
  ) {
    this.#context = context;
    this.#log = context.log;
    this.#coordination = coordination;
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
    this.#running ??= this.#coordination
      .runAlone('expiry', () => this.#sweep())
      .then(() => undefined)
      .finally(() => {
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
      if (page.length === 0) break;
      for (const session of page) {
        try {
          const found = await runtimes.find(session.id);
          if (!found) {
            skipped.add(session.id);
            continue;
          }
          // With replicas the session's lock is shared by all of them: one that is receiving a
          // chunk of it, or completing it, keeps it until it is done (the task then sees it as it is now).
          const ended = await runtimes.exclusive(found, async (runtime) => {
            if (
              !runtime ||
              runtime.record.state === 'completing' ||
              runtime.inFlight.size > 0 ||
              runtime.record.expiresAt > Date.now()
            )
              return undefined;
            await endSession(this.#context, runtime);
            return runtime;
          });
          if (!ended) {
            skipped.add(session.id);
            continue;
          }
          if (session.state !== 'complete') {
            this.#log.info(
              { event: 'session_expired', sessionId: session.id, uploader: session.uploader, path: session.path },
              `Expired upload of ${session.path}; its data was deleted`,
            );
            this.#context.events.emit('session-expired', sessionEventOf(ended));
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
    await this.#coordination.housekeeping?.();
    if (this.#coordination.sweepOrphans) {
      const removed = await sweepOrphanStaging(store, this.#context.storage, true);
      if (removed > 0)
        this.#log.info(
          { event: 'orphans_removed', orphansRemoved: removed },
          `Removed ${removed} orphaned staging uploads`,
        );
    }
  }
}

/** Expired sessions looked at per query. */
const SWEEP_PAGE = 500;
