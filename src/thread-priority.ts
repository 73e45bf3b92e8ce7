// The event loop before its helpers, when the machine's cores are all busy (Linux only).
//
// A Gatehouse process runs all of its JavaScript on one thread, the event loop, and every request
// waits for it. Its other threads help it: libuv's pool (bcrypt, WebCrypto's RSA signatures), V8's
// own (compiling, garbage collection) and SQLite's checkpoint worker (db/sqlite-checkpoints.ts). With
// every core busy, Linux shares the cores among all of them alike, and a helper woken by the event
// loop (to sign an ID token, say) may take the event loop's core at once. So each helper thread is
// given a higher nice value (a lower priority) than the event loop: it still gets every core the
// event loop leaves idle, and on a machine with cores to spare nothing changes. Linux keeps a
// nice value per thread, and raising one's own needs no privilege.
//
// Threads are found in /proc/self/task. A thread starts at its creator's nice value, so threads
// started later (libuv's pool starts at its first job) are lowered at the next look.
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** How often threads started since the last look are lowered too. */
export const RESCAN_INTERVAL_MS = 5_000;

const TASKS = '/proc/self/task';

export interface HelperThreadOptions {
  /** Told once, when the kernel refuses (a sandbox that forbids setpriority); nothing is tried after. */
  onRefused(error: unknown): void;
  rescanIntervalMs?: number;
}

/** Whether a thread ended between the listing and the call: nothing to lower. */
const isGone = (error: unknown) => (error as { code?: string }).code === 'ESRCH' || (error as { info?: { code?: string } }).info?.code === 'ESRCH';

/**
 * Gives every thread of this process but the event loop's the nice value `nice`, now and every
 * `rescanIntervalMs`; returns a function that stops looking. 0, or a system without
 * /proc/self/task, leaves every thread as it is. Call it from the main thread.
 */
export function lowerHelperThreads(nice: number, { onRefused, rescanIntervalMs = RESCAN_INTERVAL_MS }: HelperThreadOptions): () => void {
  if (nice === 0 || process.platform !== 'linux') return () => {};
  const lowerNew = (): boolean => {
    let threads: string[];
    try {
      threads = readdirSync(TASKS);
    } catch {
      return false;
    }
    for (const thread of threads) {
      const tid = Number(thread);
      // The event loop's thread id is the process id.
      if (tid === process.pid) continue;
      try {
        if (getPriority(tid) < nice) setPriority(tid, nice);
      } catch (error) {
        if (isGone(error)) continue;
        onRefused(error);
        return false;
      }
    }
    return true;
  };
  if (!lowerNew()) return () => {};
  const timer = setInterval(() => {
    if (!lowerNew()) clearInterval(timer);
  }, rescanIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
