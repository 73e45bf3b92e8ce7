// Posting the console's forms with repeated fields (ticked checkboxes) and reading back what a
// page shows: for the tests of the clients, keys, identity providers and audit sections.
import { afterAll, beforeAll, expect } from 'vitest';
import { addAdmin, signInToConsole, type ConsoleAgent } from './console.js';
import type { DatabaseFlavour } from '../../src/config/index.js';
import { startTestGatehouse, type TestGatehouse } from './gatehouse.js';

/** Posts `fields` (pairs, so a name can repeat) with the current form token; the raw response. */
export async function postPairs(agent: ConsoleAgent, path: string, fields: [string, string][], { token = true } = {}): Promise<Response> {
  const body = new URLSearchParams(token ? [['csrf_token', await agent.csrfToken()], ...fields] : fields).toString();
  return agent.browser.request(path, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

/** The page a console POST redirected to (303), with its flash notice. */
export async function followRedirect(agent: ConsoleAgent, response: Response): Promise<{ location: string; html: string }> {
  expect(response.status).toBe(303);
  const location = response.headers.get('location') as string;
  const page = await agent.browser.visit(location);
  expect(page.status).toBe(200);
  return { location, html: page.html };
}

/** The text of the element with this id (entities decoded), or undefined. */
export function textOf(html: string, id: string): string | undefined {
  const match = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html);
  return match?.[1]?.replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/** Quick sign-ins: the console's tests sign in many administrators from one address. */
export const CONSOLE_TEST_ENV = { SIGN_IN_MAX_FAILURES_PER_IP: '1000', SIGN_IN_DELAY_STEP_MS: '0' };

/**
 * For a describe block: a Gatehouse on `flavour` (with `env`) and an administrator signed in to
 * its console, made before the block's tests and closed after them. Read them as `.server`, `.agent`.
 */
export function consoleForTests(flavour: DatabaseFlavour, env: Record<string, string> = {}): { server: TestGatehouse; agent: ConsoleAgent } {
  const context = {} as { server: TestGatehouse; agent: ConsoleAgent };
  beforeAll(async () => {
    context.server = await startTestGatehouse(flavour, { env: { ...CONSOLE_TEST_ENV, ...env } });
    context.agent = await signInToConsole(context.server, await addAdmin(context.server));
  });
  afterAll(async () => context.server?.close());
  return context;
}
