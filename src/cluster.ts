// Several worker processes serving one port on one machine (WEB_CONCURRENCY > 1), with Node's
// cluster module: the primary forks the workers and the listening socket is shared, so each new
// connection goes to the next worker. Workers keep no state of their own (everything is in the
// database), so which worker answers a request never matters.
//
// The primary serves nothing. server.ts hands it the once-per-machine work to do first (migrations,
// demo data, the sweepers); this file only keeps the workers running: it restarts a worker that
// dies, with a growing delay, gives up (exit 1) when one keeps dying before it ever listens, and
// on SIGTERM/SIGINT asks every worker to drain and exits 0 once all of them exited 0.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from './core/logger.js';

/** The one message the primary sends: "drain and exit", as SIGTERM would. */
const SHUT_DOWN = { gatehouse: 'shut down' } as const;

export interface SupervisorOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** How long workers get to drain; the primary waits a little longer, then kills what is left. */
  readonly shutdownTimeoutSeconds: number;
  /** Delay before restarting a worker that died: `first`, doubled per further crash, at most `max`. */
  readonly restartDelayMs?: { readonly first: number; readonly max: number };
  /** This many worker exits before listening, with no worker starting to listen in between, make the primary give up. */
  readonly maxStartFailures?: number;
  /** After every worker has exited, before the primary exits (stop background work, close the database). */
  onStopped(): Promise<void>;
}

/** True in a process forked by superviseWorkers. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** The worker's number (1, 2, … in fork order; a restarted worker gets a new one), for its log lines. */
export function workerId(): number | undefined {
  return cluster.worker?.id;
}

/** In a worker: runs `shutDown` when the primary asks the worker to drain and exit. */
export function onPrimaryShutdownRequest(shutDown: () => void): void {
  process.on('message', (message: unknown) => {
    if (typeof message === 'object' && message !== null && (message as { gatehouse?: unknown }).gatehouse === SHUT_DOWN.gatehouse) shutDown();
  });
}

/** A worker that stays up this long has recovered: its next crash restarts it after the first delay again. */
const STABLE_AFTER_MS = 60_000;
/** Beyond SHUTDOWN_TIMEOUT, how long the primary waits for workers before killing them. */
const SHUTDOWN_GRACE_MS = 5_000;

interface Slot {
  worker: Worker | undefined;
  listening: boolean;
  startedAt: number;
  /** Consecutive exits of this slot's workers; sets the restart delay. */
  crashes: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** In the primary: forks the workers and keeps them running until SIGTERM/SIGINT. */
export function superviseWorkers({ workers, logger, shutdownTimeoutSeconds, restartDelayMs = { first: 1000, max: 30_000 }, maxStartFailures = 3, onStopped }: SupervisorOptions): void {
  const slots: Slot[] = Array.from({ length: workers }, () => ({ worker: undefined, listening: false, startedAt: 0, crashes: 0, restartTimer: undefined }));
  const slotOf = new Map<Worker, Slot>();
  let stopping = false;
  let exitCode = 0;
  /** Workers that exited before listening since one last started listening: a worker cannot start. */
  let startFailures = 0;
  let announced = false;

  function fork(slot: Slot): void {
    slot.restartTimer = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listening = false;
    slot.startedAt = Date.now();
    slotOf.set(worker, slot);
  }

  cluster.on('listening', (worker) => {
    const slot = slotOf.get(worker);
    if (!slot) return;
    slot.listening = true;
    startFailures = 0;
    logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker is listening');
    if (!announced && slots.every((s) => s.listening)) {
      announced = true;
      logger.info({ workers, pids: slots.map((s) => s.worker?.process.pid) }, `all ${workers} workers are listening`);
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const slot = slotOf.get(worker);
    slotOf.delete(worker);
    if (!slot) return;
    slot.worker = undefined;
    if (stopping) {
      // Stopped by SIGTERM while still starting up is a clean stop too.
      if (code !== 0 && !(signal && !slot.listening)) exitCode = 1;
      logger.info({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal }, 'worker stopped');
      if (slots.every((s) => !s.worker)) finish();
      return;
    }
    const ranFor = Date.now() - slot.startedAt;
    if (!slot.listening) startFailures += 1;
    slot.crashes = ranFor >= STABLE_AFTER_MS ? 1 : slot.crashes + 1;
    if (startFailures >= maxStartFailures) {
      logger.error({ worker: worker.id, exitCode: code, signal, failures: startFailures }, 'workers keep failing at start-up: giving up');
      stop(undefined, 1);
      return;
    }
    const delay = Math.min(restartDelayMs.first * 2 ** (slot.crashes - 1), restartDelayMs.max);
    logger.error({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal, listening: slot.listening, restartInMs: delay }, 'worker exited unexpectedly: restarting it');
    slot.restartTimer = setTimeout(() => fork(slot), delay);
  });

  function stop(signal: NodeJS.Signals | undefined, code = 0): void {
    exitCode = Math.max(exitCode, code);
    if (stopping) {
      if (!signal) return;
      // A second signal: the workers get it too, and each exits at once with 1.
      logger.error({ signal }, 'second signal while shutting down: stopping the workers now');
      exitCode = 1;
      for (const slot of slots) if (slot.worker?.process.pid) slot.worker.process.kill(signal);
      return;
    }
    stopping = true;
    if (signal) logger.info({ signal, timeoutSeconds: shutdownTimeoutSeconds }, 'shutting down the workers');
    for (const slot of slots) clearTimeout(slot.restartTimer);
    for (const slot of slots) {
      const worker = slot.worker;
      if (!worker) continue;
      // A worker still starting up has nothing to drain (and may not be listening for messages yet).
      if (slot.listening && worker.isConnected()) worker.send(SHUT_DOWN);
      else worker.process.kill('SIGTERM');
    }
    // Not unref'd: it must fire even if a worker never exits.
    setTimeout(() => {
      logger.error({ timeoutSeconds: shutdownTimeoutSeconds }, 'workers did not stop in time: killing them');
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      process.exit(1);
    }, shutdownTimeoutSeconds * 1000 + SHUTDOWN_GRACE_MS);
    if (slots.every((s) => !s.worker)) finish();
  }

  let finishing = false;
  function finish(): void {
    if (finishing) return;
    finishing = true;
    onStopped().then(
      () => {
        logger.info({ exitCode }, 'shut down');
        process.exit(exitCode);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutting down failed');
        process.exit(1);
      },
    );
  }

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.info({ workers }, `starting ${workers} workers`);
  for (const slot of slots) fork(slot);
}

// ---------------------------------------------------------------------------------------------
// The primary's and a worker's start (server.ts hands in what each needs)
// ---------------------------------------------------------------------------------------------

export interface PrimaryStart {
  /**
   * The once-per-machine work, before any worker starts (migrations, demo data, the metrics port,
   * the sweepers). Returns what to stop after every worker has exited.
   */
  prepare(): Promise<() => Promise<void>>;
}

/** WEB_CONCURRENCY > 1, in the primary: prepare, then keep `workers` workers serving. */
export async function startPrimary({ workers, shutdownTimeoutSeconds }: { workers: number; shutdownTimeoutSeconds: number }, logger: Logger, { prepare }: PrimaryStart): Promise<void> {
  const stop = await prepare();
  superviseWorkers({ workers, logger, shutdownTimeoutSeconds, onStopped: stop });
}

/**
 * A worker forked by the primary: `serve` starts it (listening from the start, since the primary
 * may ask while this worker is still starting) and returns its shutdown, which also runs when the
 * primary asks.
 */
export async function serveAsWorker(serve: () => Promise<(reason: 'primary') => void>): Promise<void> {
  const askedToStop = new Promise<void>((resolve) => onPrimaryShutdownRequest(resolve));
  const shutDown = await serve();
  void askedToStop.then(() => shutDown('primary'));
}
