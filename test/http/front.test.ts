// The front pipeline (src/http/front.ts): its steps run as a request arrives, its listeners once
// the response has closed, told the URL as it arrived and the time since; and its client address
// is what Express's req.ip would be: the engine's paths are served before Express, and the engine
// is told this address.
import { createServer, request, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { clientAddress, frontPipeline, type TrustProxy } from '../../src/http/front.js';
import { identifyRequest, logRequests } from '../../src/http/request-log.js';
import { trustProxy } from '../../src/config/parsers.js';
import { captureLogger } from '../helpers/logs.js';

async function serving(handle: RequestListener, use: (url: string) => Promise<void>): Promise<void> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** A front that only gives requests their ids and logs them, with its log lines. */
function loggingFront(level: 'info' | 'warn') {
  const { logger, lines } = captureLogger(level);
  return { front: frontPipeline([identifyRequest], [logRequests(logger)]), lines };
}

describe('the front pipeline', () => {
  it('runs its steps in order as the request arrives, and its listeners in order once, after the response, with the URL as it arrived', async () => {
    const heard: string[] = [];
    let closed!: () => void;
    const allClosed = new Promise<void>((resolve) => (closed = resolve));
    const front = frontPipeline(
      [(_req, res) => res.setHeader('x-first', '1'), (_req, res) => res.setHeader('x-second', String(res.getHeader('x-first')))],
      [
        (req, res, url, seconds) => heard.push(`first ${url} ${req.url} ${res.statusCode} ${seconds >= 0.05}`),
        (_req, _res, url) => {
          heard.push(`second ${url}`);
          closed();
        },
      ],
    );
    await serving(
      (req, res) => {
        front(req, res);
        heard.push('answered');
        // As a router does: the listeners still hear the URL as it arrived.
        req.url = '/rewritten';
        setTimeout(() => res.writeHead(201).end('done'), 60);
      },
      async (url) => {
        const response = await fetch(`${url}/path?query=1`);
        expect(response.status).toBe(201);
        expect(response.headers.get('x-second')).toBe('1');
        await allClosed;
      },
    );
    expect(heard).toEqual(['answered', 'first /path?query=1 /rewritten 201 true', 'second /path?query=1']);
  });

  it('logs a request whose client went away before the answer as aborted', async () => {
    const { front, lines } = loggingFront('info');
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    await serving(
      (req: IncomingMessage, res: ServerResponse) => {
        front(req, res);
        arrived();
      },
      async (url) => {
        const client = request(`${url}/slow`, { headers: { 'x-request-id': 'gone-early' } });
        client.on('error', () => {});
        client.end();
        await requestArrived;
        client.destroy();
        await expect.poll(() => lines.length).toBe(1);
      },
    );
    expect(JSON.parse(lines[0] as string)).toMatchObject({ request_id: 'gone-early', method: 'GET', path: '/slow', aborted: true, msg: 'request' });
  });

  it("logs the request's id when a handler took the header off (as Koa's error handler clears every header)", async () => {
    const { front, lines } = loggingFront('info');
    await serving(
      (req, res) => {
        front(req, res);
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        res.writeHead(500).end();
      },
      async (url) => {
        const response = await fetch(`${url}/failing`, { headers: { 'x-request-id': 'kept-through-errors' } });
        expect(response.status).toBe(500);
        expect(response.headers.get('x-request-id')).toBeNull();
        await expect.poll(() => lines.length).toBe(1);
      },
    );
    expect(JSON.parse(lines[0] as string)).toMatchObject({ request_id: 'kept-through-errors', status: 500 });
  });

  it('writes no request line above info, and still gives the request its id', async () => {
    const { front, lines } = loggingFront('warn');
    await serving(
      (req, res) => {
        front(req, res);
        res.end();
      },
      async (url) => {
        const response = await fetch(`${url}/quiet`);
        expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines).toEqual([]);
  });
});

const FORWARDED = [undefined, '203.0.113.7', '6.6.6.6, 203.0.113.7', '10.1.2.3, 127.0.0.1', ' , 198.51.100.1 ,, 10.0.0.1', 'not an address, 192.0.2.9', '2001:db8::1, ::1'];

describe('the client address before Express', () => {
  it.each(['false', 'true', '1', '2', 'loopback', '10.0.0.0/8,127.0.0.1', '192.0.2.0/24'])('equals req.ip with TRUST_PROXY=%s', async (setting) => {
    const app = express();
    app.set('trust proxy', trustProxy.parse(setting));
    app.get('/', (req, res) => {
      res.json({ express: req.ip, ours: clientAddress(req, app.get('trust proxy fn') as TrustProxy) });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      for (const forwarded of FORWARDED) {
        const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } });
        const { express: expected, ours } = (await response.json()) as { express: string; ours: string };
        expect(ours, `X-Forwarded-For: ${forwarded}`).toBe(expected);
      }
    } finally {
      server.close();
    }
  });
});
