// Graceful shutdown of a serving process (a single one, or a cluster worker).
import type { Config } from './config/index.js';
import type { Logger } from './core/logger.js';
import type { Listener } from './listen.js';

/**
 * SIGTERM/SIGINT (or, in a worker, the primary's request): stop accepting, finish what is in
 * flight, stop background work (which waits for back-channel logouts and audit writes), close the
 * database, exit 0. A second signal or SHUTDOWN_TIMEOUT ends it with exit 1; a repeated request
 * from the primary (it also arrives after a terminal's Ctrl-C reached every process) changes nothing.
 */
export function shutDownOnRequest(listener: Listener, gatehouse: { close(): Promise<void> }, config: Config, logger: Logger) {
  let stopping = false;
  return (reason: NodeJS.Signals | 'primary') => {
    if (stopping) {
      if (reason === 'primary') return;
      logger.error({ signal: reason }, 'second signal while shutting down: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal: reason, timeoutSeconds: config.server.shutdownTimeout }, 'shutting down');
    // Not unref'd: it must fire even if a stuck promise is all that is left.
    setTimeout(() => {
      logger.error({ timeoutSeconds: config.server.shutdownTimeout }, 'shutdown timed out with work still in progress: exiting now');
      process.exit(1);
    }, config.server.shutdownTimeout * 1000);
    listener
      .drain()
      .then(() => gatehouse.close())
      .then(
        () => {
          logger.info('shut down');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutting down failed');
          process.exit(1);
        },
      );
  };
}
