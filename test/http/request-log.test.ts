// One structured log line per request, tied together by a request id that the caller may
// supply (validated) and that every response carries; nothing secret in those lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, postForm, RecordingBrowser, signInAndRefresh } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';
import { captureLogger } from '../helpers/logs.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface LogLine {
  msg: string;
  request_id?: string;
  method?: string;
  path?: string;
  status?: number;
  duration_ms?: number;
}

describe.each(await flavours())('request logs on %s', (flavour) => {
  let server: TestGatehouse;
  const capture = captureLogger();
  const requestLines = () => capture.lines.map((line) => JSON.parse(line) as LogLine).filter((line) => line.msg === 'request');
  /** The request lines are written when the response closes, just after the client has it. */
  const linesFor = async (id: string) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const found = requestLines().filter((line) => line.request_id === id);
      if (found.length) return found;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return [];
  };

  beforeAll(async () => (server = await startTestGatehouse(flavour, { logger: capture.logger, clients: [webApp()], people: [ALICE] })));
  afterAll(async () => server?.close());

  it('keeps a valid X-Request-Id, and logs exactly one line for the request with method, path, status and duration', async () => {
    const id = 'req-0123.abc_DEF:42/x';
    const response = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': id } });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe(id);
    const lines = await linesFor(id);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ request_id: id, method: 'GET', path: '/healthz', status: 200 });
    expect(lines[0]?.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('generates a UUID when none is given, for our pages, the engine and unknown paths alike', async () => {
    for (const [path, status] of [['/.well-known/openid-configuration', 200], ['/nothing/here', 404], ['/token', 401]] as const) {
      const response = await fetch(`${server.url}${path}`, { method: path === '/token' ? 'POST' : 'GET' });
      expect(response.status).toBe(status);
      const id = response.headers.get('x-request-id') ?? '';
      expect(id).toMatch(UUID);
      const lines = await linesFor(id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ method: path === '/token' ? 'POST' : 'GET', path, status });
    }
  });

  it('replaces an id that is too long or not printable', async () => {
    for (const bad of ['x'.repeat(129), 'has space', 'tab\there', 'über']) {
      const response = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': bad } });
      const id = response.headers.get('x-request-id') ?? '';
      expect(id, bad).toMatch(UUID);
      expect(await linesFor(id)).toHaveLength(1);
    }
    expect(capture.lines.join('')).not.toContain('x'.repeat(129));
  });

  it('logs one line per request through a code flow, with no code or token in any of them', async () => {
    const before = requestLines().length;
    const browser = new RecordingBrowser(server.url, 'RequestLogTest/1.0');
    const { code, verifier, issued, refreshed } = await signInAndRefresh(browser, server.url, WEB_APP, ALICE);
    // The code travels in a query string the app's browser would send back to us by mistake.
    await fetch(`${server.url}/authorize?code=${code}&client_id=${WEB_APP.id}`, { redirect: 'manual' });
    await new Promise((resolve) => setTimeout(resolve, 100));

    const lines = requestLines().slice(before);
    const ids = lines.map((line) => line.request_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(lines.filter((line) => line.path === '/token')).toHaveLength(2);
    expect(lines.some((line) => line.path === '/authorize' && line.status === 303)).toBe(true);
    expect(lines.some((line) => line.path === '/interaction/:id/login' && line.method === 'POST')).toBe(true);
    const text = capture.lines.join('');
    for (const secret of [code, verifier, ALICE.password, WEB_APP.secret, issued.access_token, issued.refresh_token, refreshed.refresh_token, issued.id_token]) {
      expect(text).not.toContain(secret);
    }
    for (const line of lines) expect(line.path).not.toContain('?');
  });

  it('adds the request id to the engine\'s "request refused" lines', async () => {
    const id = 'refused-request-1';
    const response = await postForm(`${server.url}/token`, { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: WEB_APP.redirectUri }, { 'x-request-id': id, authorization: basicAuth(WEB_APP) });
    expect(response.status).toBe(400);
    await linesFor(id);
    const refused = capture.lines.map((line) => JSON.parse(line) as LogLine).filter((line) => line.msg === 'request refused' && line.request_id === id);
    expect(refused).toHaveLength(1);
  });
});
