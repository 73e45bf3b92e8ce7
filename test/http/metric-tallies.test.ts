// The tallied request and storage metrics read exactly as prom-client's own Counter and Histogram
// read after the same observations: in the text a scrape returns, and summed across workers as
// the cluster's primary sums them.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Tallies, TalliedCounter, TalliedHistogram } from '../../src/http/metric-tallies.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ['method', 'route', 'status'] as const;
type Observation = [method: string, route: string, status: string, seconds: number];

/** The same metrics twice: prom-client's classes, and ours over one set of tallies. */
function pair() {
  const reference = new Registry();
  const counter = new Counter({ name: 'test_requests_total', help: 'Requests.', labelNames: LABELS, registers: [reference] });
  const histogram = new Histogram({ name: 'test_request_duration_seconds', help: 'Durations.', labelNames: LABELS, buckets: BUCKETS, registers: [reference] });
  const tallied = new Registry();
  const tallies = new Tallies(LABELS, BUCKETS);
  new TalliedCounter('test_requests_total', 'Requests.', tallies, tallied);
  new TalliedHistogram('test_request_duration_seconds', 'Durations.', tallies, tallied);
  return {
    reference,
    tallied,
    tallies,
    observe(observations: readonly Observation[]) {
      for (const [method, route, status, seconds] of observations) {
        counter.inc({ method, route, status });
        histogram.observe({ method, route, status }, seconds);
        tallies.observe([method, route, status], seconds);
      }
    },
  };
}

const OBSERVATIONS: Observation[] = [
  ['GET', 'userinfo', '200', 0.0004],
  ['POST', 'token', '200', 0.005], // on a bound: counted in le="0.005"
  ['GET', 'userinfo', '200', 0.012],
  ['POST', 'token', '400', 0.3],
  ['GET', 'userinfo', '401', 42], // above every bound: +Inf only
  ['POST', 'token', '200', 0.0099],
  ['GET', '/interaction/:uid', '200', 2.5],
  ['GET', 'a "quoted"\\route\nwith a newline', '200', 0.07], // escaped in the text format
];

describe('tallied metrics', () => {
  it('read as prom-client reads the same observations', async () => {
    const metrics = pair();
    metrics.observe(OBSERVATIONS);
    const text = await metrics.tallied.metrics();
    expect(text).toBe(await metrics.reference.metrics());
    expect(text).toContain('test_request_duration_seconds_bucket{le="0.005",method="POST",route="token",status="200"} 1');
    expect(text).toContain('test_request_duration_seconds_bucket{le="+Inf",method="GET",route="userinfo",status="401"} 1');
    expect(text).toContain('test_requests_total{method="GET",route="userinfo",status="200"} 2');
  });

  it('sum across workers as prom-client sums them', async () => {
    const one = pair();
    const two = pair();
    one.observe(OBSERVATIONS.slice(0, 5));
    two.observe(OBSERVATIONS.slice(3));
    const reference = AggregatorRegistry.aggregate([await one.reference.getMetricsAsJSON(), await two.reference.getMetricsAsJSON()]);
    const tallied = AggregatorRegistry.aggregate([await one.tallied.getMetricsAsJSON(), await two.tallied.getMetricsAsJSON()]);
    expect(await tallied.metrics()).toBe(await reference.metrics());
    expect(await tallied.metrics()).toContain('test_request_duration_seconds_count{method="POST",route="token",status="400"} 2');
  });

  it('start again from nothing when the registry is reset', async () => {
    const metrics = pair();
    metrics.observe(OBSERVATIONS);
    metrics.reference.resetMetrics();
    metrics.tallied.resetMetrics();
    expect(await metrics.tallied.metrics()).toBe(await metrics.reference.metrics());
    metrics.observe(OBSERVATIONS.slice(0, 2));
    expect(await metrics.tallied.metrics()).toBe(await metrics.reference.metrics());
    expect(metrics.tallies.all()).toHaveLength(2);
  });

  it('keep the same series for the same label values, whatever came between', () => {
    const tallies = new Tallies(['model', 'method'], [0.001, 0.01]);
    tallies.observe(['AccessToken', 'find'], 0.0005);
    tallies.observe(['Session', 'find'], 0.02);
    tallies.observe(['AccessToken', 'find'], 0.005);
    tallies.observe(['AccessToken', 'upsert'], 0.001);
    expect(tallies.all().map(({ labels, count, sum, perBucket }) => ({ labels, count, sum, perBucket: [...perBucket] }))).toEqual([
      { labels: { model: 'AccessToken', method: 'find' }, count: 2, sum: 0.0055, perBucket: [1, 1] },
      { labels: { model: 'Session', method: 'find' }, count: 1, sum: 0.02, perBucket: [0, 0] },
      { labels: { model: 'AccessToken', method: 'upsert' }, count: 1, sum: 0.001, perBucket: [1, 0] },
    ]);
  });
});
