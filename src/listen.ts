// Serving the app on PORT (and /metrics on METRICS_PORT), and draining both for a graceful
// shutdown (shutdown.ts): new connections refused, requests in flight finished.
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { Config } from './config/index.js';
import type { Logger } from './core/logger.js';
import { REQUEST_OBJECTS } from './http/request-objects.js';
import { listenForMetrics, type MetricsListener, type MetricsSource } from './http/metrics-port.js';

export interface Listener {
  /**
   * Refuses new connections, lets the requests in flight finish (closing their connections
   * once answered, and idle keep-alive connections at once) and resolves when none is left.
   */
  drain(): Promise<void>;
}

/** Serves the app on PORT; with `metrics`, also /metrics on METRICS_PORT (drained together). */
export async function listen(app: RequestListener, config: Config, metrics?: { source: MetricsSource; logger: Logger }): Promise<Listener> {
  const metricsListener = metrics && config.metrics.port !== undefined ? await listenForMetrics(metrics.source, { host: config.metrics.host, port: config.metrics.port }, metrics.logger) : undefined;
  try {
    return await listenForApp(app, config, metricsListener);
  } catch (error) {
    await metricsListener?.close();
    throw error;
  }
}

function listenForApp(app: RequestListener, config: Config, metricsListener: MetricsListener | undefined): Promise<Listener> {
  // Express's methods on the objects from the start (http/request-objects.ts).
  const server = createServer(REQUEST_OBJECTS);
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  // Registered before the app, so the header is set before any handler can answer.
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    // Without Connection: close, a kept-alive connection would hold the server open until
    // its keep-alive timeout after answering.
    if (draining) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
  });
  server.on('request', app);
  const drain = () => {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    server.closeIdleConnections();
    return Promise.all([closed, metricsListener?.close()]).then(() => undefined);
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => {
      server.off('error', reject);
      resolve({ drain });
    });
  });
}
