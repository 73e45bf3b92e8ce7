// Graceful shutdown of the real process (src/server.ts compiled, test/helpers/compiled.ts): SIGTERM stops
// accepting connections, lets a request already in flight finish, closes idle keep-alive
// connections and exits 0; a request that never completes, or a second signal, ends it with 1.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { serverOnFreshSqlite } from '../helpers/server-process.js';

const server = serverOnFreshSqlite('shutdown');

afterEach(() => server.cleanUp());

/** The server on a fresh SQLite file, once discovery answers. */
const startServer = (env: Record<string, string> = {}) => server.start(env);

/** A raw connection that collects everything the server sends, until it closes the connection. */
function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return {
    socket,
    closed,
    received: () => received,
    connected: new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
  };
}

/** Resolves with the error code when a new connection is refused, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const TOKEN_BODY = 'grant_type=client_credentials&client_id=no-such-client&client_secret=not-the-secret&scope=openid';

/** Sends the head of a POST /token and half of its body: the request is in flight, waiting for the rest. */
async function startSlowTokenRequest(port: number) {
  const connection = rawConnection(port);
  await connection.connected;
  connection.socket.write(
    [`POST /token HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(TOKEN_BODY)}`, '', ''].join('\r\n'),
  );
  connection.socket.write(TOKEN_BODY.slice(0, 20));
  return connection;
}

describe('graceful shutdown of the server process', () => {
  it('on SIGTERM refuses new connections, closes idle keep-alive ones, answers the request in flight and exits 0', async () => {
    const { child, port, logs, exited } = await startServer({ SHUTDOWN_TIMEOUT: '10s' });

    // An idle keep-alive connection: one answered request, and the connection stays open.
    const idle = rawConnection(port);
    await idle.connected;
    idle.socket.write(`GET /.well-known/openid-configuration HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await until(() => idle.received().trimEnd().endsWith('}'), 'the discovery answer on the keep-alive connection');
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(idle.received()).toMatch(/^connection: keep-alive\r$/im);

    const inFlight = await startSlowTokenRequest(port);
    await sleep(300); // the server has parsed the head and waits for the body

    const signalledAt = Date.now();
    child.kill('SIGTERM');
    await until(() => logs.some((line) => line.msg === 'shutting down'), "the 'shutting down' log line");

    // Idle connections are closed at once; new ones are refused.
    await Promise.race([idle.closed, sleep(2000).then(() => Promise.reject(new Error('the idle keep-alive connection was not closed')))]);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
    expect(child.exitCode, 'the process must wait for the request in flight').toBeNull();

    // The rest of the body arrives after the signal, slowly; the request is answered normally.
    for (const piece of [TOKEN_BODY.slice(20, 50), TOKEN_BODY.slice(50)]) {
      await sleep(250);
      inFlight.socket.write(piece);
    }
    await inFlight.closed; // the server closes the connection after answering
    const response = inFlight.received();
    const [head = '', body = ''] = response.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 401 /);
    expect(head).toMatch(/^connection: close\r?$/im);
    expect(JSON.parse(body)).toMatchObject({ error: 'invalid_client' });

    const { code, at } = await exited;
    expect(code).toBe(0);
    expect(at - signalledAt).toBeLessThan(10_000);
    const messages = logs.map((line) => line.msg);
    expect(messages).toContain('shutting down');
    expect(messages).toContain('shut down');
    expect(messages.some((msg) => msg?.includes('timed out'))).toBe(false);
  }, 60_000);

  it('exits 1 after SHUTDOWN_TIMEOUT when a request never completes', async () => {
    const { child, port, logs, exited } = await startServer({ SHUTDOWN_TIMEOUT: '1s' });
    const stuck = await startSlowTokenRequest(port);
    await sleep(300);

    const signalledAt = Date.now();
    child.kill('SIGTERM');
    const { code, at } = await exited;

    expect(code).toBe(1);
    expect(at - signalledAt).toBeGreaterThanOrEqual(900);
    expect(at - signalledAt).toBeLessThan(5000);
    expect(logs.map((line) => line.msg)).toContain('shutting down');
    expect(logs.some((line) => line.msg?.includes('shutdown timed out') && line.level === 50)).toBe(true);
    stuck.socket.destroy();
  }, 60_000);

  it('exits 1 at once on a second signal while waiting', async () => {
    const { child, port, logs, exited } = await startServer({ SHUTDOWN_TIMEOUT: '30s' });
    const stuck = await startSlowTokenRequest(port);
    await sleep(300);

    child.kill('SIGTERM');
    await until(() => logs.some((line) => line.msg === 'shutting down'), "the 'shutting down' log line");
    const secondAt = Date.now();
    child.kill('SIGINT');
    const { code, at } = await exited;

    expect(code).toBe(1);
    expect(at - secondAt).toBeLessThan(3000);
    expect(logs.some((line) => line.msg?.includes('second signal'))).toBe(true);
    stuck.socket.destroy();
  }, 60_000);
});

describe('METRICS_PORT in a single process', () => {
  it('serves /metrics there only, and closes it on SIGTERM with the rest', async () => {
    const metricsPort = await freePort();
    const { child, port, exited } = await startServer({ METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' });
    const discoveryServed = async () => {
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return Number(/^gatehouse_http_requests_total\{[^}]*route="discovery"[^}]*\} (\d+)$/m.exec(await metrics.text())?.[1] ?? 0);
    };
    const before = await discoveryServed();
    expect((await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).status).toBe(200);
    expect(await discoveryServed()).toBe(before + 1);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST' })).status).toBe(405);

    child.kill('SIGTERM');
    expect((await exited).code).toBe(0);
    expect(await tryConnect(metricsPort)).toBe('ECONNREFUSED');
  }, 60_000);
});
