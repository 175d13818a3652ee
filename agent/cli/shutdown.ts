import type { Logger } from 'pino';

/**
 * `ros2 launch` sends SIGINT, then SIGTERM 5 s later, then SIGKILL; systemd's default is
 * SIGTERM then SIGKILL after 90 s. The agent must be gone within 5 s of the first signal, so
 * the in-flight chunks get at most IN_FLIGHT_DRAIN_SECONDS (the engine's stopTimeout is
 * lowered to it), and the process exits at EXIT_DEADLINE_SECONDS whatever is left: the journal
 * is written synchronously, so the next start resumes from the server's view.
 */
export const IN_FLIGHT_DRAIN_SECONDS = 3;
export const EXIT_DEADLINE_SECONDS = 4.5;

/**
 * One Ctrl-C may arrive twice: the terminal sends SIGINT to the whole foreground process group,
 * and a parent that forwards signals to its child (npm, which runs `npm start`) sends it again.
 * A repeat of the same signal within this time is the same request, not a second one.
 */
export const SAME_SIGNAL_SECONDS = 2;

/**
 * Runs `stop` on the first SIGINT or SIGTERM and resolves with the exit code once it finished
 * (or the deadline passed); a second signal (other than the same one repeated within
 * SAME_SIGNAL_SECONDS) exits at once with 130/143.
 */
export function onStopSignal(
  stop: () => Promise<void>,
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<number> {
  return new Promise((resolve) => {
    let stopping: { signal: NodeJS.Signals; at: number } | undefined;
    const handler = (signal: NodeJS.Signals): void => {
      if (stopping) {
        if (signal === stopping.signal && performance.now() - stopping.at < SAME_SIGNAL_SECONDS * 1000) return;
        logger.warn({ signal }, 'second signal: exiting now');
        exit(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      stopping = { signal, at: performance.now() };
      logger.info({ signal }, 'stopping: finishing in-flight chunks');
      const deadline = setTimeout(() => {
        logger.warn('stop deadline reached; exiting (uploads resume at the next start)');
        resolve(0);
      }, EXIT_DEADLINE_SECONDS * 1000);
      deadline.unref();
      stop().then(
        () => {
          clearTimeout(deadline);
          resolve(0);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          logger.error({ err: error }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
