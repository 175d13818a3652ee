import type { Logger } from 'pino';
import { handleStopSignals } from '../app/stop-signals.js';

export { SAME_SIGNAL_SECONDS } from '../app/stop-signals.js';

/**
 * After the drain (see agent/app/stop-signals.ts), the stop itself must fit in what supervisors
 * allow after their next signal (`ros2 launch`: SIGKILL 5 s after SIGTERM; systemd: 90 s): the
 * in-flight chunks get at most IN_FLIGHT_SECONDS (the engine's stopTimeout is lowered to it), and
 * the process exits STOP_DEADLINE_SECONDS after the drain whatever is left: the journal is written
 * synchronously, so the next start resumes from the server's view.
 */
export const IN_FLIGHT_SECONDS = 3;
export const STOP_DEADLINE_SECONDS = 4.5;

/** The steps of a graceful stop. */
export interface StopSteps {
  /** Keep uploading what the recorder closes (bounded by drainTimeout); `cut` ends it sooner. None for `upload`. */
  drain?(cut: AbortSignal): Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * On the first SIGINT or SIGTERM: drains, then stops (within STOP_DEADLINE_SECONDS), and resolves
 * with the exit code (0, or 1 if stopping failed). A second signal cuts the drain short; a third
 * exits at once with 130/143 (without a drain, the second one does).
 */
export function onStopSignal(
  steps: StopSteps,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<number> {
  const signals = handleStopSignals({
    logger,
    exitNow: exit,
    drains: steps.drain !== undefined,
    stop: async (cut) => {
      await steps.drain?.(cut);
      if (!(await settlesWithin(steps.stop(), STOP_DEADLINE_SECONDS * 1000)))
        logger.warn('stop deadline reached; exiting (uploads resume at the next start)');
    },
  });
  return signals.stopped.then(
    () => 0,
    (error: unknown) => {
      logger.error({ err: error }, 'error while stopping');
      return 1;
    },
  );
}

/** True when the promise settled in time (its rejection is rethrown), false on timeout. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true as const), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
