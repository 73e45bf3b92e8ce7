// Signing in through GitHub (the real-HTTP GitHub-style server of test/helpers/upstreams.ts) in
// Chromium: the button on the sign-in page, the round trip with its cookie across origins, the
// account page listing the link, and a refusal page, each checked by axe-core.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/log.js';
import { createLogger } from '../../src/core/logger.js';
import { createIdp } from '../../src/federation/service.js';
import { startTestGatehouse, TEST_SECRET, type TestGatehouse } from '../helpers/gatehouse.js';
import { gitHubEndpoints, startGitHub, type FakeGitHub } from '../helpers/upstreams.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const haveBrowser = existsSync(CHROMIUM);

describe.skipIf(!haveBrowser && process.env.CI !== 'true')('signing in through GitHub in a real browser (Chromium)', () => {
  let server: TestGatehouse;
  let github: FakeGitHub;
  let browser: Browser;

  beforeAll(async () => {
    server = await startTestGatehouse('sqlite');
    github = await startGitHub();
    const deps = { db: server.gatehouse.db, secrets: [TEST_SECRET], audit: createAuditLog(server.gatehouse.db, createLogger({ logLevel: 'silent' })), issuer: server.issuer };
    await createIdp(deps, { id: 'github', display_name: 'GitHub', kind: 'oauth2', preset: 'github', ...gitHubEndpoints(github), client_id: github.clientId, client_secret: github.clientSecret, create_accounts: true }, { via: 'cli' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await github?.close();
    await server?.close();
  });

  async function seriousViolations(page: Page): Promise<string[]> {
    await page.evaluate(`${AXE_SOURCE};0`);
    const { violations } = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] })`)) as { violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] };
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${page.url()}: ${v.id} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }

  it('signs in to the account page with the GitHub button, and shows the link there', async () => {
    github.user = { id: 31337, login: 'hubber', name: 'Hub Ber', emails: [{ email: 'hubber@example.com', primary: true, verified: true }] };
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
    });
    await page.goto(`${server.url}/account`);
    await page.waitForURL(/\/interaction\//);
    expect(await seriousViolations(page)).toEqual([]);
    await page.click('button:has-text("Sign in with GitHub")');
    await page.waitForURL(`${server.url}/account`);
    expect(await page.textContent('#identities-heading')).toBe('Sign-in with other accounts');
    expect(await page.textContent('main')).toContain('as hubber@example.com');
    expect(await seriousViolations(page)).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('shows a refusal page that passes axe', async () => {
    github.user = undefined;
    const context = await browser.newContext({ locale: 'ko-KR' });
    const page = await context.newPage();
    await page.goto(`${server.url}/account`);
    await page.waitForURL(/\/interaction\//);
    const response = page.waitForResponse((r) => r.url().includes('/federation/github/return'));
    await page.click('button.identity-provider');
    expect((await response).status()).toBe(403);
    expect(await page.textContent('[role=alert]')).toContain('GitHub에서 로그인을 허용하지 않으셨거나');
    expect(await seriousViolations(page)).toEqual([]);
    await page.click('a:has-text("돌아가기")');
    await page.waitForSelector('#email');
    await context.close();
  });
});
