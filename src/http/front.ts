// The front of every request: plain functions on node:http that run before anything routes it,
// so that the engine's paths, which skip Express, and the Express app get the same request id,
// log line, metrics and security headers from the same code. Express's cost (it swaps the
// request's and response's prototypes, after which the engine's and Node's own code run markedly
// slower; see test/bench/ROUNDS.md, round 1) is paid only by our own pages and APIs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

/** One step of the front: sets headers as the request arrives; never answers. */
export type FrontStep = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Told once a response has closed (sent, or its connection lost first), with the request's path
 * and query as it arrived (Express rewrites `req.url` while a router handles it) and the seconds
 * since it arrived.
 */
export type ClosedListener = (req: IncomingMessage, res: ServerResponse, url: string, seconds: number) => void;

/**
 * The steps, in order, as one; and the listeners, in order, once the response has closed. Every
 * listener shares one clock reading and one `close` listener on the response.
 */
export function frontPipeline(steps: readonly FrontStep[], listeners: readonly ClosedListener[]): FrontStep {
  return function front(req, res) {
    const arrived = performance.now();
    const url = req.url ?? '';
    for (const step of steps) step(req, res);
    res.on('close', () => {
      const seconds = (performance.now() - arrived) / 1000;
      for (const listener of listeners) listener(req, res, url, seconds);
    });
  };
}

/** The request's path without its query, as it arrived (`*` and absolute forms give ''). */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  if (!url.startsWith('/')) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Express's compiled TRUST_PROXY (its `trust proxy fn` setting): whether the hop `i` away at `address` is a trusted proxy. */
export type TrustProxy = (address: string, i: number) => boolean;

/**
 * The client's address as Express's `req.ip` computes it (the proxy-addr rule): walk back from the
 * socket's peer through X-Forwarded-For, right to left, while each hop is trusted; the first
 * untrusted one is the client (or the leftmost entry when all are trusted).
 */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  const peer = req.socket.remoteAddress ?? '';
  const header = req.headers['x-forwarded-for'];
  if (!header) return peer;
  // As the `forwarded` package reads it: entries between commas, spaces around them dropped, empty ones skipped.
  const forwarded = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((hop) => hop.replace(/^ +| +$/g, ''))
    .filter(Boolean);
  const hops = [peer, ...forwarded.reverse()];
  for (let i = 0; i < hops.length - 1; i++) {
    if (!trust(hops[i] as string, i)) return hops[i] as string;
  }
  return hops[hops.length - 1] as string;
}
