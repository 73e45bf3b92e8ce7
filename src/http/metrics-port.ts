// METRICS_PORT: /metrics on a port of its own, so it can stay off the public internet (bind it
// to an internal interface with METRICS_HOST) and, with WEB_CONCURRENCY > 1, describe the whole
// machine: the cluster's primary asks every worker for its registry over the cluster channel
// (prom-client's AggregatorRegistry) and answers with the sum. The sum covers the workers alive
// at the time: when one dies and is replaced, its counts leave the sum, which Prometheus sees as
// a counter reset. Without METRICS_PORT, /metrics is on the public port (app.ts) and describes
// the one process that answered.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * In a cluster worker, as early as possible: answer the primary's requests for metrics (with
 * none at first), and return the function that names the registry to answer with once it exists.
 */
export function reportToClusterPrimary(): (registry: Registry) => void {
  AggregatorRegistry.setRegistries([]);
  // Constructing one installs the worker's listener for the primary's requests.
  new AggregatorRegistry();
  return (registry) => AggregatorRegistry.setRegistries([registry]);
}

/** In the cluster primary: every live worker's metrics, added up. */
export function clusterMetrics(): MetricsSource {
  const aggregator = new AggregatorRegistry();
  return { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() };
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers }).end(body);
}

/** Listens on `port` (0: any free port) and serves GET/HEAD /metrics from `source`; nothing else. */
export function listenForMetrics(source: MetricsSource, { host, port }: { host: string; port: number }, logger: Logger): Promise<MetricsListener> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return answer(res, 404, 'Not found: this port serves /metrics only.\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'Use GET.\n', { Allow: 'GET, HEAD' });
    source.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': source.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'collecting metrics failed');
        answer(res, 500, 'Collecting metrics failed; see the server log.\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => {
          const closed = new Promise<void>((done) => server.close(() => done()));
          server.closeAllConnections();
          return closed;
        },
      });
    });
  });
}
