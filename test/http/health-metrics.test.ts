// Operating Gatehouse: liveness, readiness with named checks (and 503 naming what fails), and
// Prometheus metrics after a real sign-in flow, labelled by route name, never by URL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { RecordingBrowser, signInAndRefresh } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp, WRONG_PASSWORD } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

async function get(url: string) {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The value of one sample, e.g. sample(text, 'gatehouse_sign_ins_total', { outcome: 'success' }). */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe.each(await flavours())('health and metrics on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour, { clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  it('answers /healthz while the process is alive', async () => {
    const response = await get(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ status: 'ok' });
  });

  it('answers /readyz with every check named', async () => {
    const response = await get(`${server.url}/readyz`);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', signing_keys: 'ok' } });
  });

  it('counts requests by route, sign-ins by outcome, tokens by grant type, storage calls, and the event loop', async () => {
    const browser = new RecordingBrowser(server.url, 'MetricsTest/1.0');
    const { code, issued, refreshed } = await signInAndRefresh(browser, server.url, WEB_APP, ALICE, { wrongPassword: WRONG_PASSWORD });
    expect((await fetch(`${server.url}/no/such/page?code=${code}`)).status).toBe(404);

    const metrics = await get(`${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.type).toContain('text/plain');
    const text = metrics.text;

    // Requests by route name and status; no URL, code, token or interaction id in any label.
    expect(sample(text, 'gatehouse_http_requests_total', { method: 'GET', route: 'authorization', status: '303' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'gatehouse_http_requests_total', { method: 'POST', route: 'token', status: '200' })).toBe(2);
    expect(sample(text, 'gatehouse_http_requests_total', { method: 'POST', route: '/interaction/:uid/login', status: '401' })).toBe(1);
    expect(sample(text, 'gatehouse_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(sample(text, 'gatehouse_http_request_duration_seconds_count', { method: 'POST', route: 'token', status: '200' })).toBe(2);
    expect(text).toMatch(/gatehouse_http_request_duration_seconds_bucket\{le="0\.1",method="POST",route="token",status="200"\} \d/);
    for (const credential of [code, issued.access_token, issued.refresh_token, refreshed.refresh_token]) expect(text).not.toContain(credential);
    const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]));
    for (const route of routes) expect(route).not.toMatch(/\?|=|\/interaction\/[^:]/);

    expect(sample(text, 'gatehouse_sign_ins_total', { outcome: 'success' })).toBe(1);
    expect(sample(text, 'gatehouse_sign_ins_total', { outcome: 'failure' })).toBe(1);
    expect(sample(text, 'gatehouse_sign_ins_total', { outcome: 'locked' })).toBe(0);
    expect(sample(text, 'gatehouse_tokens_issued_total', { grant_type: 'authorization_code' })).toBe(1);
    expect(sample(text, 'gatehouse_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(1);
    expect(sample(text, 'gatehouse_adapter_duration_seconds_count', { model: 'AuthorizationCode', method: 'consume' })).toBe(1);
    expect(sample(text, 'gatehouse_adapter_duration_seconds_count', { model: 'Client', method: 'find' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('nodejs_eventloop_lag_p99_seconds');
    expect(text).toContain('process_resident_memory_bytes');
  });
});

describe.each(await flavours())('readiness when something is wrong, on %s', (flavour) => {
  let server: TestGatehouse;
  beforeAll(async () => (server = await startTestGatehouse(flavour)));
  afterAll(async () => server?.close());

  it('answers 503 naming the migrations while one is pending, then 200 once it is applied', async () => {
    // As if a deploy shipped a migration the database has not had yet: forget the newest one.
    const db = await createDb(server.database.config);
    let newest: { migration_name: string }[];
    try {
      newest = await db.prisma.$queryRaw`SELECT migration_name FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1`;
      await db.prisma.$executeRaw`UPDATE _prisma_migrations SET rolled_back_at = finished_at WHERE migration_name = ${newest[0]?.migration_name}`;
      const pending = await get(`${server.url}/readyz`);
      expect(pending.status).toBe(503);
      expect(JSON.parse(pending.text)).toEqual({ status: 'not_ready', checks: { database: 'ok', migrations: 'failing', signing_keys: 'ok' } });
    } finally {
      await db.prisma.$executeRaw`UPDATE _prisma_migrations SET rolled_back_at = NULL`;
      await db.close();
    }
    expect((await get(`${server.url}/readyz`)).status).toBe(200);
  });

  it('answers 503 naming the database once it is gone, while /healthz still answers 200', async () => {
    // SQLite: close the connection and delete the file's directory, so it cannot reopen.
    // PostgreSQL: DROP DATABASE … WITH (FORCE) ends the pool's connections.
    if (flavour === 'sqlite') await server.gatehouse.db.close();
    await server.database.drop();
    const response = await get(`${server.url}/readyz`);
    expect(response.status).toBe(503);
    const body = JSON.parse(response.text) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('not_ready');
    expect(body.checks.database).toBe('failing');
    // Migrations were seen applied once: that result is kept, not re-checked.
    expect(body.checks.migrations).toBe('ok');
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
  });
});
