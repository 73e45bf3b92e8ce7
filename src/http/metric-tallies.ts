// Counts and latency histograms for the metrics on every request's path (HTTP requests by route,
// the engine's storage calls, tokens issued), tallied in plain arrays and read by prom-client's
// registry only when it is scraped. prom-client's own observe() checks the label names and hashes
// the labels into a string on every call: 6–7 µs a call in a busy server, three calls and about
// 5 % of a /userinfo request's CPU (test/bench/ROUNDS.md, round 14). A tally is a few Map
// lookups and additions. What a scrape shows is what prom-client's Counter and Histogram show for
// the same observations (test/http/metric-tallies.test.ts), in the text format and in the JSON
// the cluster's primary sums (metrics-port.ts).
import type { Metric, Registry } from 'prom-client';

/** One combination of label values: how many observations, their sum, and how many fell in each bucket. */
class Tally {
  count = 0;
  sum = 0;
  /** Observations per bucket, each counted in the first whose upper bound is at least its value (not cumulative). */
  readonly perBucket: Float64Array;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly upperBounds: readonly number[],
  ) {
    this.perBucket = new Float64Array(upperBounds.length);
  }

  observe(value: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.perBucket[i]!++;
    this.count++;
    this.sum += value;
  }
}

type Level = Map<string, Level | Tally>;

/** The tallies of one family of observations, one per combination of label values, in order of first use. */
export class Tallies {
  private readonly first: Level = new Map();
  private readonly made: Tally[] = [];
  readonly upperBounds: readonly number[];

  constructor(
    readonly labelNames: readonly string[],
    upperBounds: readonly number[] = [],
  ) {
    this.upperBounds = [...upperBounds].sort((a, b) => a - b);
  }

  /** Records one observation (a duration in seconds; 1 for a plain count) for these label values, given in labelNames' order. */
  observe(values: readonly string[], value = 1): void {
    this.of(values).observe(value);
  }

  /** Every tally made so far. */
  all(): readonly Tally[] {
    return this.made;
  }

  reset(): void {
    this.first.clear();
    this.made.length = 0;
  }

  private of(values: readonly string[]): Tally {
    let level = this.first;
    const last = this.labelNames.length - 1;
    for (let i = 0; i < last; i++) {
      let next = level.get(values[i]!) as Level | undefined;
      if (!next) level.set(values[i]!, (next = new Map()));
      level = next;
    }
    let tally = level.get(values[last]!) as Tally | undefined;
    if (!tally) {
      tally = new Tally(Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]!])), this.upperBounds);
      level.set(values[last]!, tally);
      this.made.push(tally);
    }
    return tally;
  }
}

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * What prom-client's Registry reads of a metric: its name, help and type, get() (values as
 * prom-client's own metrics give them, for the text format and for getMetricsAsJSON) and reset().
 */
abstract class TalliedMetric {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly tallies: Tallies,
    registry: Registry,
  ) {
    // Registry.registerMetric keeps the object and reads only the members above; its parameter is typed as prom-client's own classes.
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract samples(): Sample[];

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  reset(): void {
    this.tallies.reset();
  }
}

/** A counter read from tallies: each combination's count of observations. */
export class TalliedCounter extends TalliedMetric {
  readonly type = 'counter';

  protected samples(): Sample[] {
    return this.tallies.all().map((tally) => ({ value: tally.count, labels: { ...tally.labels } }));
  }
}

/** A histogram read from tallies: cumulative buckets (`le`, then +Inf), then _sum and _count, per combination. */
export class TalliedHistogram extends TalliedMetric {
  readonly type = 'histogram';

  protected samples(): Sample[] {
    const bucket = `${this.name}_bucket`;
    return this.tallies.all().flatMap((tally) => {
      let below = 0;
      const buckets = this.tallies.upperBounds.map((le, i) => ({ value: (below += tally.perBucket[i]!), labels: { le, ...tally.labels }, metricName: bucket }));
      return [
        ...buckets,
        { value: tally.count, labels: { le: '+Inf', ...tally.labels }, metricName: bucket },
        { value: tally.sum, labels: { ...tally.labels }, metricName: `${this.name}_sum` },
        { value: tally.count, labels: { ...tally.labels }, metricName: `${this.name}_count` },
      ];
    });
  }
}
