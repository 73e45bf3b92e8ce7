// Gatehouse's listener makes its requests and responses with Express's methods from the start
// (src/http/request-objects.ts), so Express never swaps their prototypes, and each app still reads
// its own settings through them.
import { createServer, IncomingMessage, type RequestListener, type Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { adoptRequestObjects, AppRequest, AppResponse, REQUEST_OBJECTS } from '../../src/http/request-objects.js';
import { listen, type Listener } from '../../src/listen.js';
import { freePort } from '../helpers/ports.js';

/** An app that answers GET /echo with what Express's request methods say, under `trustProxy`. */
function echoApp(trustProxy: boolean, name: string): Express {
  const app = express();
  adoptRequestObjects(app);
  app.set('trust proxy', trustProxy);
  app.get('/echo', (req, res) => {
    res.status(201).json({
      app: name,
      ip: req.ip,
      query: req.query,
      host: req.get('host') !== undefined,
      requestClassKept: Object.getPrototypeOf(req) === AppRequest.prototype,
      responseClassKept: Object.getPrototypeOf(res) === AppResponse.prototype,
      sameApp: req.app === app && res.app === app,
    });
  });
  return app;
}

async function started(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((close) => close()));
});

describe("the listener's request objects", () => {
  it("are made with Express's methods, and keep their class through Express", async () => {
    const app = echoApp(false, 'only');
    const seen: { request?: boolean; response?: boolean } = {};
    const handler: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
      // What the server made, before Express has touched it.
      seen.request = req instanceof AppRequest;
      seen.response = res instanceof AppResponse;
      app(req, res);
    };
    const port = await freePort();
    const listener: Listener = await listen(handler, { server: { port, host: '127.0.0.1' }, metrics: {} } as unknown as Config);
    closing.push(() => listener.drain());

    const response = await fetch(`http://127.0.0.1:${port}/echo?name=kim&tags=a&tags=b`);
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({
      app: 'only',
      ip: '127.0.0.1',
      query: { name: 'kim', tags: ['a', 'b'] },
      host: true,
      requestClassKept: true,
      responseClassKept: true,
      sameApp: true,
    });
    expect(seen).toEqual({ request: true, response: true });
  });

  it('give each app in the process its own settings', async () => {
    const trusting = echoApp(true, 'trusting');
    const wary = echoApp(false, 'wary');
    const server = createServer(REQUEST_OBJECTS, (req, res) => (req.url?.startsWith('/echo?to=trusting') ? trusting : wary)(req, res));
    const url = await started(server);
    closing.push(() => new Promise((resolve) => server.close(resolve)));

    const headers = { 'x-forwarded-for': '203.0.113.9' };
    const [first, second] = await Promise.all([fetch(`${url}/echo?to=trusting`, { headers }), fetch(`${url}/echo?to=wary`, { headers })]);
    expect(await first.json()).toMatchObject({ app: 'trusting', ip: '203.0.113.9', sameApp: true });
    expect(await second.json()).toMatchObject({ app: 'wary', ip: '127.0.0.1', sameApp: true });
  });

  it('refuse an app that uses them a place inside another app, whose prototypes Express would make their parents', () => {
    const parent = express();
    expect(() => parent.use('/inner', echoApp(false, 'inner'))).toThrow(/cannot be mounted in another app/);
    expect(Object.getPrototypeOf(AppRequest.prototype)).toBe(IncomingMessage.prototype);
    expect(Object.getPrototypeOf(AppResponse.prototype)).toBe(ServerResponse.prototype);
  });

  it("still give Express's methods to node:http's plain objects (another server, as supertest's)", async () => {
    const app = echoApp(false, 'plain');
    const server = createServer(app);
    const url = await started(server);
    closing.push(() => new Promise((resolve) => server.close(resolve)));

    const response = await fetch(`${url}/echo?name=lee`);
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ app: 'plain', query: { name: 'lee' }, requestClassKept: true, responseClassKept: true, sameApp: true });
  });
});
