// How fast the machine runs right now: a fixed piece of CPU work (a JavaScript sort, JSON and
// SHA-256), timed in the bench's own process at the start of a run, before any server starts,
// and again at its end, with the servers idle. The build machines' speed drifts by 20 % and more
// within minutes while nothing of ours runs (README "Performance"). When the two readings differ
// widely, the servers measured early and late in the run did not run on the same machine in
// effect, and the run's ratios deserve less trust than its same-moment comparisons.
import { createHash } from 'node:crypto';

const ITEMS = 20_000;
const HASHED = Buffer.alloc(256 * 1024, 7);

/** One pass of the work; returns something derived from it, so that none of it can be skipped. */
function work(): number {
  let seed = 12345;
  const numbers = Array.from({ length: ITEMS }, () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648));
  numbers.sort((a, b) => a - b);
  const records = numbers.slice(0, 2_000).map((n, i) => ({ id: i, value: n, label: `item-${n.toString(36)}` }));
  const parsed = JSON.parse(JSON.stringify(records)) as typeof records;
  const digest = createHash('sha256').update(HASHED).digest();
  return numbers[ITEMS >> 1]! + parsed.length + digest[0]!;
}

/** Milliseconds one pass takes: the median of `passes`, after three untimed passes (V8 optimises the work meanwhile). */
export function workloadMs(passes = 25): number {
  let sink = work() + work() + work();
  const times: number[] = [];
  for (let i = 0; i < passes; i++) {
    const started = performance.now();
    sink += work();
    times.push(performance.now() - started);
  }
  if (!Number.isFinite(sink)) throw new Error('the workload went wrong');
  times.sort((a, b) => a - b);
  return times[passes >> 1]!;
}

/** One line on the two readings, e.g. "the fixed workload took 21.3 ms at the start and 27.9 ms at the end: the machine ran 24 % slower at the end". */
export function describeDrift(startMs: number, endMs: number): string {
  const change = endMs / startMs - 1;
  // Readings taken a second apart differ by up to 10 % on the build machines.
  const drift = Math.abs(change) < 0.1 ? 'the machine ran about as fast at both ends' : `the machine ran ${Math.round(Math.abs(change) * 100)} % ${change > 0 ? 'slower' : 'faster'} at the end`;
  return `machine speed: the fixed workload took ${startMs.toFixed(1)} ms at the start and ${endMs.toFixed(1)} ms at the end: ${drift}`;
}
