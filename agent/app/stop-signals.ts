import type { Logger } from 'pino';

/**
 * What the agent does on SIGINT and SIGTERM, in the program and in the ROS node alike:
 * - the first signal starts the graceful stop: drain (keep uploading what the recorder closes,
 *   for at most drainTimeout), then stop (in-flight chunks get a few seconds);
 * - a repeat of the same signal within SAME_SIGNAL_SECONDS is the same request (ignored);
 * - a second one cuts the drain short (the stop that follows is bounded): that is what
 *   `ros2 launch` sends when its sigterm_timeout is over, and what an impatient Ctrl-C sends;
 * - a third one exits at once (130 after SIGINT, 143 after SIGTERM): the journal is written as
 *   it goes, so the next start resumes.
 */
/**
 * One Ctrl-C may arrive twice: the terminal sends SIGINT to the whole foreground process group,
 * and a parent that forwards signals to its child (npm, which runs `npm start`; ros2 launch when
 * not on a terminal) sends it again. A repeat of the same signal within this time is the same
 * request, not a second one.
 */
export const SAME_SIGNAL_SECONDS = 2;

export interface StopSignalsOptions {
  logger: Logger;
  /** The graceful stop; `cut` aborts at the second signal. Its settling is reported by `stopped`. */
  stop: (cut: AbortSignal) => Promise<void>;
  /** Ends the process now (the third signal). */
  exitNow: (code: number) => void;
  /** Where signals come from; default process. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  /** Default true. Without a drain (the `upload` command) the second signal exits at once. */
  drains?: boolean;
}

export interface StopSignals {
  /** Settles once the graceful stop has finished (rejects if it failed). Never settles without a signal. */
  readonly stopped: Promise<void>;
  /** Stops listening (after a stop that was started another way). */
  dispose(): void;
}

/** The exit code of a process ended by this signal (128 + its number). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

export function handleStopSignals(options: StopSignalsOptions): StopSignals {
  const { logger } = options;
  const signals = options.signals ?? process;
  const cut = new AbortController();
  let count = 0;
  let last: { signal: NodeJS.Signals; at: number } | undefined;
  const drains = options.drains !== false;
  let resolveStopped: () => void = () => {};
  let rejectStopped: (error: unknown) => void = () => {};
  const stopped = new Promise<void>((resolve, reject) => {
    resolveStopped = resolve;
    rejectStopped = reject;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    const now = performance.now();
    if (last && last.signal === signal && now - last.at < SAME_SIGNAL_SECONDS * 1000) return;
    last = { signal, at: now };
    count += 1;
    if (count === 1) {
      logger.info(
        { signal },
        drains
          ? `${signal}: stopping (a second signal skips the drain, a third exits at once)`
          : `${signal}: stopping (a second signal exits at once)`,
      );
      options.stop(cut.signal).then(resolveStopped, rejectStopped);
    } else if (count === 2 && drains) {
      logger.warn({ signal }, `${signal} again: skipping the rest of the drain`);
      cut.abort();
    } else {
      logger.warn({ signal }, `${signal} again: exiting now (uploads resume at the next start)`);
      options.exitNow(signalExitCode(signal));
    }
  };
  const dispose = (): void => {
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
  };
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  return { stopped, dispose };
}
