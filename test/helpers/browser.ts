// A small cookie-keeping user agent for driving the sign-in pages over real HTTP: it follows
// redirects within Gatehouse and stops at the first one that leaves for another origin (the
// app's redirect_uri), which is what the app would receive.
export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

export class Browser {
  private cookies: Cookie[] = [];

  /** `headers` go with every request (a User-Agent, say). */
  constructor(
    private readonly origin: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  private cookieHeader(url: URL): string {
    return this.cookies
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = (key: string) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.split('=')[1];
      const path = attr('path') ?? '/';
      const expires = attr('expires');
      const expired = attr('max-age') === '0' || (expires !== undefined && new Date(expires).getTime() <= Date.now());
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path));
      if (!expired) this.cookies.push({ name, value, path });
    }
  }

  hasCookie(name: string): boolean {
    return this.cookies.some((c) => c.name === name);
  }

  /** The value of a cookie this browser holds, if it does. */
  cookie(name: string): string | undefined {
    return this.cookies.find((c) => c.name === name)?.value;
  }

  /** Puts a cookie in this jar, as if a server had set it (a test copying one browser's cookie into another). */
  setCookie(name: string, value: string, path = '/'): void {
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path));
    this.cookies.push({ name, value, path });
  }

  /** One request, no redirect following. */
  async request(url: string, init: { method?: string; form?: Record<string, string>; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const headers: Record<string, string> = { accept: 'text/html', ...this.headers, ...init.headers };
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    // `body` sends a raw, already encoded body (repeated or odd fields) with the given headers.
    let body: string | undefined = init.body;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const response = await fetch(target, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.store(response.headers);
    return response;
  }

  /**
   * Requests `url` and follows redirects within Gatehouse. Returns the page it ends on, or
   * `redirectedTo` when a redirect leaves for another origin.
   */
  async visit(url: string, init: { form?: Record<string, string> } = {}): Promise<Page & { redirectedTo?: URL }> {
    let response = await this.request(url, init);
    let current = new URL(url, this.origin);
    for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops++) {
      const next = new URL(response.headers.get('location') ?? '', current);
      if (next.origin !== this.origin) return { status: response.status, url: current.href, html: '', headers: response.headers, redirectedTo: next };
      current = next;
      response = await this.request(next.href);
    }
    return { status: response.status, url: current.href, html: await response.text(), headers: response.headers };
  }
}

/** The action and fields (hidden inputs, prefilled values) of the form whose action contains `actionPart`. */
export function findForm(html: string, actionPart: string): { action: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  for (const [, attributes = '', inner = ''] of forms) {
    const action = /action="([^"]*)"/.exec(attributes)?.[1];
    if (action === undefined || !action.includes(actionPart)) continue;
    const fields: Record<string, string> = {};
    for (const [input = ''] of inner.matchAll(/<input\b[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input)?.[1];
      if (name) fields[name] = decodeEntities(/value="([^"]*)"/.exec(input)?.[1] ?? '');
    }
    return { action: decodeEntities(action), fields };
  }
  throw new Error(`no form with an action containing ${actionPart} in:\n${html.slice(0, 2000)}`);
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

/** Submits the form whose action contains `actionPart`: its own fields (the form token among them) and `fields`. */
export function submitForm(browser: Browser, page: { html: string }, actionPart: string, fields: Record<string, string> = {}) {
  const form = findForm(page.html, actionPart);
  return browser.visit(form.action, { form: { ...form.fields, ...fields } });
}

/** Submits the sign-in form once (for a wrong password: the page shown again). */
export const submitPassword = (browser: Browser, page: { html: string }, person: { email: string; password: string }) =>
  submitForm(browser, page, '/login', { email: person.email, password: person.password });

/** Allows access on the consent page. */
export const allowAccess = (browser: Browser, page: { html: string }) => submitForm(browser, page, '/confirm');

/** Logs out at `url` (the end-session endpoint): the confirmation page, then "sign out". Returns the page it ends on. */
export async function signOut(browser: Browser, url: string) {
  return submitForm(browser, await browser.visit(url), '/logout', { logout: 'yes' });
}

/**
 * Drives whatever pages appear (sign-in, then consent when asked) until the browser is sent
 * back to the app, and returns where it was sent.
 */
export async function completeSignIn(browser: Browser, page: Page & { redirectedTo?: URL }, person: { email: string; password: string }): Promise<URL> {
  for (let step = 0; step < 4 && !page.redirectedTo; step++) {
    page = page.html.includes('/login"') ? await submitPassword(browser, page, person) : await allowAccess(browser, page);
  }
  if (!page.redirectedTo) throw new Error(`never returned to the app; last page:\n${page.html.slice(0, 500)}`);
  return page.redirectedTo;
}
