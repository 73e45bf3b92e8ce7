// The development demo's callback page: the curl command it shows is safe to paste into a shell
// whatever `code` the URL carries, and it holds the demo client's secret only for a browser on
// the machine Gatehouse runs on. The demo user may try the admin console.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_SECRET_PLACEHOLDER, isLoopback, shellQuote } from '../../src/http/demo.js';
import { createGroupStore } from '../../src/groups/store.js';
import { ensureDemo, type Demo } from '../../src/seed/demo.js';
import { Browser, findForm, type Page } from '../helpers/browser.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

/**
 * Runs `script` in a shell of its own process group; after 10 s the whole group is killed, the
 * curl the shell started as well (killing only the shell would leave curl holding the output open).
 */
function sh(script: string, cwd: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group ended meanwhile.
      }
    }, 10_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout });
      else reject(new Error(`sh -c ${JSON.stringify(script)} ended with ${signal ?? `exit code ${code}`}: ${stderr}`));
    });
  });
}

const decodeEntities = (text: string) => text.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
/** The command in the page's <pre>, as a person would copy it. */
const commandOn = (page: { html: string }) => {
  const pre = /<pre>([\s\S]*?)<\/pre>/.exec(page.html)?.[1];
  return pre === undefined ? undefined : decodeEntities(pre);
};

/** Signs the demo person in with the demo client; returns the callback page the browser lands on. */
async function signInToDemo(server: TestGatehouse, demo: Demo, headers: Record<string, string> = {}): Promise<Page> {
  const browser = new Browser(server.issuer, headers);
  let page = await browser.visit(demo.authorizeUrl);
  const login = findForm(page.html, '/login');
  page = await browser.visit(login.action, { form: { ...login.fields, email: demo.email, password: demo.password } });
  if (page.html.includes('/confirm"')) {
    const consent = findForm(page.html, '/confirm');
    page = await browser.visit(consent.action, { form: consent.fields });
  }
  expect(new URL(page.url).pathname).toBe('/demo/callback');
  return page;
}

describe('shellQuote', () => {
  it('makes any text one shell word that stands for exactly that text', async () => {
    const work = mkdtempSync(join(tmpdir(), 'gatehouse-quote-'));
    try {
      const hostile = ["'", "x'; touch pwned; echo '", '$(touch pwned)', '`touch pwned`', '"; touch pwned; "', '\\', '\n', "'\\''", '$HOME', '!!', '*', '-n'];
      const text = fc.oneof(fc.constantFrom(...hostile), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.split('\0').join('').replace(/\p{Surrogate}/gu, '')));
      await fc.assert(
        fc.asyncProperty(text, async (value) => {
          const { stdout } = await sh(`printf '%s' ${shellQuote(value)}`, work);
          expect(stdout).toBe(value);
        }),
        { numRuns: 150 },
      );
      expect(existsSync(join(work, 'pwned'))).toBe(false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['203.0.113.7', false],
    ['::ffff:203.0.113.7', false],
    ['1127.0.0.1', false],
    ['fe80::1', false],
    [undefined, false],
  ])('%s → %s', (ip, expected) => {
    expect(isLoopback(ip)).toBe(expected);
  });
});

describe('the demo callback page', () => {
  let server: TestGatehouse;
  let demo: Demo;
  let work: string;

  beforeAll(async () => {
    // TRUST_PROXY: a request may say it came, through a proxy on this machine, from elsewhere.
    server = await startTestGatehouse('sqlite', { env: { DEMO: 'true', TRUST_PROXY: 'loopback' } });
    demo = server.gatehouse.demo as Demo;
    work = mkdtempSync(join(tmpdir(), 'gatehouse-demo-'));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('shows a browser on this machine a command with the secret that, pasted into a shell, gets the tokens', async () => {
    const page = await signInToDemo(server, demo);
    expect(page.status).toBe(200);
    const command = commandOn(page);
    expect(command).toContain(`'${demo.clientId}:${demo.clientSecret}'`);
    const { stdout } = await sh(command as string, work);
    const tokens = JSON.parse(stdout) as Record<string, unknown>;
    expect(tokens).toMatchObject({ token_type: 'Bearer' });
    expect(tokens.id_token).toEqual(expect.any(String));
  });

  it('puts the demo user in ADMIN_GROUP, so the admin console can be tried, and does so once however often it starts', async () => {
    const groups = createGroupStore(server.gatehouse.db);
    expect(demo.consoleUrl).toBe(`${server.issuer}/console`);
    expect(await groups.isMember('demo-user', demo.adminGroup)).toBe(true);
    await ensureDemo(server.gatehouse.db, server.config);
    const admins = await groups.findByName(demo.adminGroup);
    expect(await groups.memberIds(admins!.id)).toEqual(['demo-user']);
  });

  it('shows anyone else a placeholder instead of the secret, and says where to find it', async () => {
    const page = await signInToDemo(server, demo, { 'x-forwarded-for': '203.0.113.7' });
    expect(page.html).not.toContain(demo.clientSecret);
    expect(commandOn(page)).toContain(`'${demo.clientId}:${DEMO_SECRET_PLACEHOLDER}'`);
    expect(page.html).toContain('The client secret is shown only in a browser on the machine Gatehouse runs on.');

    const visited = await new Browser(server.issuer, { 'x-forwarded-for': '198.51.100.1' }).visit('/demo/callback?code=abc&state=demo');
    expect(visited.html).not.toContain(demo.clientSecret);
  });

  it('shows no command for a code outside the engine\'s alphabet, so nothing a link carries reaches a shell', async () => {
    for (const code of ["x'; touch pwned; echo '", '$(touch pwned)', '`touch pwned`', 'abc\ntouch pwned', 'abc def', 'a;b', 'é']) {
      const page = await new Browser(server.issuer).visit(`/demo/callback?${new URLSearchParams({ code, state: 'demo' })}`);
      expect(page.status, code).toBe(400);
      expect(commandOn(page), code).toBeUndefined();
      expect(page.html).toContain('That is not an authorization code Gatehouse issues');
      expect(page.html).not.toContain(demo.clientSecret);
    }
    // A code of the right alphabet is quoted anyway; the command is harmless whatever it holds.
    const page = await new Browser(server.issuer).visit('/demo/callback?code=-rf_x&state=demo');
    expect(commandOn(page)).toContain("-d code='-rf_x'");
    await sh(commandOn(page) as string, work).catch(() => undefined);
    expect(existsSync(join(work, 'pwned'))).toBe(false);
  });
});
