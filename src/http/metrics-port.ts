// METRICS_PORT: /metrics on a port of its own, so it can stay off the public internet (bind it
// to an internal interface with METRICS_HOST) and, with WEB_CONCURRENCY > 1, describe the whole
// machine: the cluster's primary asks every listening worker for its registry over the cluster
// channel and answers with the sum (prom-client's aggregation rules). A worker still starting is
// not asked (it has served nothing yet); a scrape fails (503) rather than report a partial sum
// when a listening worker does not answer within WORKER_ANSWER_MS. When a worker dies and is
// replaced, its counts leave the sum, which Prometheus sees as a counter reset. Without
// METRICS_PORT, /metrics is on the public port (app.ts) and describes the one process that
// answered.
import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from '../core/logger.js';

export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

const WORKER_ANSWER_MS = 3000;

type RegistryJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

interface MetricsRequest {
  gatehouseMetrics: 'request';
  id: string;
}
interface MetricsAnswer {
  gatehouseMetrics: 'answer';
  id: string;
  metrics?: RegistryJson;
  error?: string;
}

const isMessage = <T extends { gatehouseMetrics: string }>(value: unknown, kind: T['gatehouseMetrics']): value is T =>
  typeof value === 'object' && value !== null && (value as { gatehouseMetrics?: unknown }).gatehouseMetrics === kind;

/** In a cluster worker, once its registry exists (before it listens): answer the primary's requests. */
export function reportToClusterPrimary(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMessage<MetricsRequest>(message, 'request')) return;
    const reply = (answer: Omit<MetricsAnswer, 'gatehouseMetrics' | 'id'>) => process.send?.({ gatehouseMetrics: 'answer', id: message.id, ...answer } satisfies MetricsAnswer);
    registry.getMetricsAsJSON().then(
      (metrics) => reply({ metrics }),
      (error: unknown) => reply({ error: (error as Error).message }),
    );
  });
}

/** In the cluster primary: every listening worker's metrics, added up. */
export function clusterMetrics(): MetricsSource {
  const listening = new Set<Worker>();
  cluster.on('listening', (worker) => listening.add(worker));
  cluster.on('exit', (worker) => listening.delete(worker));

  function ask(worker: Worker): Promise<RegistryJson> {
    return new Promise((resolve, reject) => {
      const id = randomUUID();
      const finish = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      };
      const onMessage = (message: unknown) => {
        if (!isMessage<MetricsAnswer>(message, 'answer') || message.id !== id) return;
        finish();
        if (message.metrics) resolve(message.metrics);
        else reject(new Error(`worker ${worker.process.pid} could not collect its metrics: ${message.error ?? 'no reason given'}`));
      };
      const onExit = () => {
        finish();
        reject(new Error(`worker ${worker.process.pid} exited before answering`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`worker ${worker.process.pid} did not answer within ${WORKER_ANSWER_MS} ms`));
      }, WORKER_ANSWER_MS);
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.send({ gatehouseMetrics: 'request', id } satisfies MetricsRequest);
    });
  }

  return {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    async metrics() {
      const answers = await Promise.all([...listening].filter((worker) => worker.isConnected()).map(ask));
      return answers.length ? AggregatorRegistry.aggregate(answers).metrics() : '';
    },
  };
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
        answer(res, 503, 'Collecting metrics failed; see the server log.\n');
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
