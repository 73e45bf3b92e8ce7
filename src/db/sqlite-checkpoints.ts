// SQLite's checkpoints, off the event loop. In WAL mode every commit appends to the log, and a
// checkpoint copies the log back into the database file and syncs it. Left to SQLite, the commit
// that takes the log past 1,000 pages runs that checkpoint itself, inside COMMIT: 30–40 ms on
// this project's test machines, during which no request in the process moves (about once a
// second under the bench's refresh load). Here a worker thread with its own connection runs a passive
// checkpoint every CHECKPOINT_INTERVAL_MS; passive checkpoints never wait for, or block, the
// process's reads and writes. The main connection keeps an automatic checkpoint only as a
// backstop, at BACKSTOP_PAGES, should the worker fall behind, and at SQLite's usual size if it fails.
//
// A checkpoint works on the file, whichever connection runs it, so one thread on the machine is
// enough: the workers of a cluster leave them to their primary's (checkpointElsewhere), each
// saving a worker thread's isolate (about 11 MB of a Node 22 process's peak: round 19 in
// test/bench/ROUNDS.md). Should the primary's thread fail, the primary warns, and the workers'
// commits checkpoint at the backstop's size until Gatehouse is restarted.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

export const CHECKPOINT_INTERVAL_MS = 200;
/** About 40 MB of log: out of reach while the worker runs (it checkpoints five times a second). */
export const BACKSTOP_PAGES = 10_000;
/** SQLite's own automatic checkpoint, put back if the worker fails. */
export const SQLITE_DEFAULT_PAGES = 1000;

// CommonJS, run by the worker from this string (a bundle has no file of its own to give it).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: workerData.busyTimeoutMs });
let failed = false;
function checkpoint() {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
  } catch (error) {
    // Reported once per run of failures; the backstop checkpoint covers the gap.
    if (!failed) parentPort.postMessage({ failed: String(error && error.message || error) });
    failed = true;
  }
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface Checkpoints {
  /** Runs a last checkpoint and ends the worker. */
  stop(): Promise<void>;
}

/** Node's warning for a failed checkpoint (stderr): the worker keeps trying, and the backstop covers the gap. */
const warn = (message: string) => process.emitWarning(`SQLite checkpoint in the background failed: ${message}`, { code: 'GATEHOUSE_SQLITE_CHECKPOINT' });

/**
 * For a process whose checkpoints another process on the machine runs (a cluster's primary):
 * `handle` keeps only the backstop, for when that process falls behind or its thread fails.
 */
export function checkpointElsewhere(handle: Database): void {
  handle.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
}

/** Moves `handle`'s checkpoints for `file` to a worker thread; `onFailure` hears of a checkpoint that failed. */
export function checkpointInBackground(handle: Database, file: string, busyTimeoutMs: number, onFailure: (message: string) => void = warn): Checkpoints {
  checkpointElsewhere(handle);
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, busyTimeoutMs, intervalMs: CHECKPOINT_INTERVAL_MS } });
  // It never keeps the process alive on its own; close() ends it.
  worker.unref();
  worker.on('message', (message: { failed?: string }) => message.failed && onFailure(message.failed));
  let ended = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.once('error', (error) => {
    // The worker is gone: SQLite checkpoints inside COMMIT again, at its usual size, rather than
    // at the backstop's, which would stall the event loop ten times as long.
    ended = true;
    if (handle.open) handle.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_PAGES}`);
    onFailure(error.message);
  });
  return {
    async stop() {
      if (!ended) {
        // Held until it has exited, so that the process waits for the last checkpoint.
        worker.ref();
        worker.postMessage('stop');
      }
      ended = true;
      await exited;
    },
  };
}
