// Posting the console's forms with repeated fields (ticked checkboxes) and reading back what a
// page shows: for the tests of the clients, keys, identity providers and audit sections.
import { expect } from 'vitest';
import type { ConsoleAgent } from './console.js';

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
