// The pages people see: every string from a catalogue (English and Korean), the language each
// page is shown in, the deployment's branding, the consent page's details, and nothing loaded
// from another origin.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brandStylesheet, contrast } from '../../src/http/branding.js';
import { preferredLanguage } from '../../src/http/languages.js';
import { CATALOGUES, createTranslator, describeClaim } from '../../src/http/messages/index.js';
import { en } from '../../src/http/messages/en.js';
import { VIEWS_DIR } from '../../src/http/pages.js';
import { allowAccess, Browser, findForm, submitPassword, type Page } from '../helpers/browser.js';
import { authorizationUrl, startAuthorization } from '../helpers/code-flow.js';
import { flavours } from '../helpers/databases.js';
import { ALICE, APP, WEB_APP, webApp } from '../helpers/fixtures.js';
import { startTestGatehouse, type TestGatehouse } from '../helpers/gatehouse.js';

/** The web app with a name, a logo and links of its own, which the consent page shows. */
const ALBUM_LOGO = 'https://album.example/logo.png';
const PHOTO_ALBUM = webApp({
  client_name: 'Photo Album',
  client_uri: 'https://album.example/about',
  policy_uri: 'https://album.example/privacy',
  tos_uri: 'https://album.example/terms',
  logo_uri: ALBUM_LOGO,
});
const HANGUL = /[\uac00-\ud7a3]/;

/** A browser that states its languages, as a real one does. */
class LanguageBrowser extends Browser {
  constructor(
    origin: string,
    private readonly acceptLanguage = '*',
  ) {
    super(origin);
  }

  override async request(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    return super.request(url, { ...init, headers: { 'accept-language': this.acceptLanguage, ...init.headers } });
  }
}

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const langOf = (html: string) => /<html lang="([^"]+)">/.exec(html)?.[1];
const titleOf = (html: string) => /<title>([^<]*)<\/title>/.exec(html)?.[1];

function viewFiles(dir = VIEWS_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? viewFiles(join(dir, entry.name)) : entry.name.endsWith('.ejs') ? [join(dir, entry.name)] : [],
  );
}

/**
 * What a template says to people without going through t(): text between tags, the words in
 * alt/title/aria-label/placeholder attributes, and quoted words in EJS code. A heuristic: it
 * reads the template, not its output.
 */
function hardCodedStrings(template: string): string[] {
  const found: string[] = [];
  const source = template.replace(/<%#[\s\S]*?%>/g, '');
  const words = /[A-Za-z]{2,}|[\uac00-\ud7a3]/;
  // The markup with every EJS block blanked out, to tell where each block sits.
  const blanked = source.replace(/<%[\s\S]*?%>/g, (block) => ' '.repeat(block.length));
  for (const match of source.matchAll(/<%([=-]?)([\s\S]*?)%>/g)) {
    const [, kind, code = ''] = match;
    const before = blanked.slice(0, match.index);
    const inTag = before.lastIndexOf('<') > before.lastIndexOf('>');
    const attribute = /([\w-]+)="[^"]*$/.exec(before)?.[1];
    // Inside a tag, only these attributes are read or shown to people.
    if (kind && inTag && !['alt', 'title', 'aria-label', 'placeholder', 'value'].includes(attribute ?? '')) continue;
    // A string that is the first argument of a call names something (a key, a partial, a field), as do a partial's `name`, `id`, `type`, `autocomplete`.
    const rest = code.replace(/\b[\w.]+\(\s*'[^']*'/g, '(').replace(/\b(?:name|id|type|autocomplete)\s*:\s*'[^']*'/g, '');
    for (const [literal = ''] of rest.matchAll(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g)) {
      const text = literal.slice(1, -1);
      const keyLike = /^[\w./-]+$/.test(text) && /[./-]/.test(text);
      // Output expressions show any word; code blocks also build attributes and key prefixes.
      const shown = kind ? words.test(text) && !keyLike : /[A-Za-z]{2,}\s+[A-Za-z]{2,}/.test(text) && !/[=<]/.test(text);
      if (shown) found.push(text);
    }
  }
  const markup = source.replace(/<%[\s\S]*?%>/g, '');
  for (const [, value = ''] of markup.matchAll(/\s(?:alt|title|aria-label|placeholder)="([^"]*)"/g)) {
    if (words.test(value)) found.push(value);
  }
  const text = markup.replace(/<!doctype[^>]*>/gi, '').replace(/<[^>]+>/g, ' ');
  for (const piece of text.split(/\s{2,}|\n/)) if (words.test(piece)) found.push(piece.trim());
  return found;
}

describe('message catalogues', () => {
  it('have the same keys and the same placeholders in English and Korean', () => {
    expect(Object.keys(CATALOGUES.ko).sort()).toStrictEqual(Object.keys(CATALOGUES.en).sort());
    for (const [key, english] of Object.entries(CATALOGUES.en)) {
      expect(placeholders(CATALOGUES.ko[key as keyof typeof en]), key).toStrictEqual(placeholders(english));
      expect(CATALOGUES.ko[key as keyof typeof en].trim(), key).not.toBe('');
    }
  });

  it('are written in their language', () => {
    const korean = Object.values(CATALOGUES.ko).filter((text) => HANGUL.test(text));
    // Almost every Korean message is in Hangul (a few are codes or names).
    expect(korean.length).toBeGreaterThan(Object.keys(CATALOGUES.ko).length * 0.95);
    expect(Object.values(CATALOGUES.en).some((text) => HANGUL.test(text))).toBe(false);
  });

  it('fills placeholders and escapes them in markup', () => {
    const t = createTranslator('ko');
    expect(t('consent.heading', { client: 'Photo Album' })).toBe('Photo Album에 계정 접근을 허용하시겠습니까?');
    expect(createTranslator('en').strong('login.lead', { client: '<script>x</script>' })).toBe('to continue to <strong>&lt;script&gt;x&lt;/script&gt;</strong>');
    expect(() => t('no.such.key')).toThrow(/unknown message key/);
    expect(describeClaim(createTranslator('en'), 'picture')).toBe('See your profile picture');
    expect(describeClaim(createTranslator('en'), 'shoe_size')).toBe('See the detail “shoe_size”');
    expect(describeClaim(t, 'shoe_size')).toBe('“shoe_size” 정보 보기');
  });

  it('leaves no user-visible string hard-coded in a template', () => {
    const offenders = viewFiles().flatMap((file) => hardCodedStrings(readFileSync(file, 'utf8')).map((text) => `${relative(VIEWS_DIR, file)}: ${text}`));
    expect(offenders).toStrictEqual([]);
  });

  it('the heuristic finds hard-coded text, attributes and strings', () => {
    expect(hardCodedStrings('<h1>Sign in</h1>')).toStrictEqual(['Sign in']);
    expect(hardCodedStrings('<img alt="A logo" src="x">')).toStrictEqual(['A logo']);
    expect(hardCodedStrings("<%= ok ? 'verified' : t('a.b') %>")).toStrictEqual(['verified']);
    expect(hardCodedStrings("<%- include('partials/top', { title: 'Your account' }) %>")).toStrictEqual(['Your account']);
    expect(hardCodedStrings('<p><%= done ? "Saved" : t(\'a.b\') %></p>')).toStrictEqual(['Saved']);
    expect(hardCodedStrings("<h1><%= t('login.title') %></h1> · <code><%= error %></code>:")).toStrictEqual([]);
    expect(hardCodedStrings("<button class=\"<%= on ? 'primary' : 'secondary' %>\"><%= t(on ? 'a.on' : 'a.off') %></button>")).toStrictEqual([]);
    expect(hardCodedStrings("<%- include('partials/form-error', { id: 'form-error', message: t('a.b') }) %>")).toStrictEqual([]);
  });

  it('knows every key the templates ask for', () => {
    const used = viewFiles().flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/\bt(?:\.strong)?\(\s*'([^']+)'\s*[,)]/g)].map((m) => m[1] as string));
    expect(used.length).toBeGreaterThan(50);
    expect(used.filter((key) => !Object.hasOwn(en, key))).toStrictEqual([]);
  });
});

describe('language choice', () => {
  it('takes ui_locales first, then Accept-Language, and leaves the rest to the default', () => {
    expect(preferredLanguage('ko en', ['en'])).toBe('ko');
    expect(preferredLanguage('fr ko-KR', ['en'])).toBe('ko');
    expect(preferredLanguage('fr', ['ko-KR', 'en'])).toBe('ko');
    expect(preferredLanguage(undefined, ['de', 'en-GB'])).toBe('en');
    expect(preferredLanguage('fr de', ['*'])).toBeUndefined();
    expect(preferredLanguage(['ko'], [])).toBeUndefined();
  });
});

describe('brand colour', () => {
  const colours = (css: string) => [...css.matchAll(/--primary: (#[0-9a-f]{6}); --primary-text: (#[0-9a-f]{6})/g)].map((m) => [m[1], m[2]] as [string, string]);
  const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as unknown as readonly [number, number, number];

  it.each(['#1d4ed8', '#ffff00', '#000000', '#ffffff', '#f0a', '#7aa2ff'])('keeps AA contrast in light and dark mode for %s', (colour) => {
    const [[lightPrimary, lightText], [darkPrimary, darkText]] = colours(brandStylesheet(colour)) as [[string, string], [string, string]];
    expect(contrast(rgb(lightPrimary), [255, 255, 255])).toBeGreaterThanOrEqual(4.5);
    expect(contrast(rgb(lightPrimary), [0xf4, 0xf5, 0xf7])).toBeGreaterThanOrEqual(4.5);
    expect(contrast(rgb(lightPrimary), rgb(lightText))).toBeGreaterThanOrEqual(4.5);
    expect(contrast(rgb(darkPrimary), [0x1b, 0x1f, 0x24])).toBeGreaterThanOrEqual(4.5);
    expect(contrast(rgb(darkPrimary), rgb(darkText))).toBeGreaterThanOrEqual(4.5);
  });

  it('keeps a colour that already reads well as it is', () => {
    expect(brandStylesheet('#1d4ed8')).toContain('--primary: #1d4ed8;');
  });
});

/** Every URL a page makes the browser load by itself (not links the person may follow). */
function loadedUrls(html: string): string[] {
  return [...html.matchAll(/<(?:link|script|img|iframe|source|video|audio)\b[^>]*\s(?:src|href)="([^"]*)"/gi), ...html.matchAll(/url\(([^)]*)\)/g)].map((m) => m[1] as string);
}

describe.each(await flavours())('pages on %s', (flavour) => {
  let server: TestGatehouse;
  const rendered: Page[] = [];
  const keep = <T extends Page>(page: T) => (rendered.push(page), page);

  beforeAll(async () => (server = await startTestGatehouse(flavour, { clients: [PHOTO_ALBUM], people: [ALICE] })));
  afterAll(async () => server?.close());

  /** The first page of an authorization request (sign-in, or consent for a signed-in browser). */
  async function loginPage(browser: Browser, params: Record<string, string> = {}, scope = 'openid email') {
    return keep(await browser.visit(authorizationUrl(server.issuer, WEB_APP, { scope, ...params }).url.href));
  }

  it('shows the sign-in page in Korean when ui_locales asks for it', async () => {
    const page = await loginPage(new LanguageBrowser(server.issuer, 'en'), { ui_locales: 'ko' });
    expect(page.status).toBe(200);
    expect(langOf(page.html)).toBe('ko');
    expect(titleOf(page.html)).toBe('로그인 · Gatehouse');
    expect(page.html).toContain('<label for="email">이메일</label>');
    expect(page.html).toContain('<strong>Photo Album</strong> 사용을 계속하려면 로그인하십시오');
    expect(page.html).not.toContain('Sign in');
  });

  it('shows it in Korean for Accept-Language: ko, and skips languages it does not have', async () => {
    const korean = await loginPage(new LanguageBrowser(server.issuer, 'fr-FR, ko;q=0.8, en;q=0.5'));
    expect(langOf(korean.html)).toBe('ko');
    const unsupported = await loginPage(new LanguageBrowser(server.issuer, 'ko'), { ui_locales: 'fr de' });
    expect(langOf(unsupported.html), 'an unsupported ui_locales falls back to Accept-Language').toBe('ko');
    const neither = await loginPage(new LanguageBrowser(server.issuer, 'fr, de;q=0.9'), { ui_locales: 'fr' });
    expect(langOf(neither.html)).toBe('en');
    expect(neither.html).toContain('<label for="email">Email</label>');
  });

  it('announces a form error in Korean, marks the field and focuses it', async () => {
    const browser = new LanguageBrowser(server.issuer, 'ko');
    const page = await loginPage(browser);
    const login = findForm(page.html, '/login');
    const empty = keep(await browser.visit(login.action, { form: { ...login.fields, email: '', password: '' } }));
    expect(empty.status).toBe(400);
    expect(empty.html).toContain('<p class="alert" role="alert" id="form-error">이메일 주소를 입력해 주십시오.</p>');
    expect(empty.html).toMatch(/<input id="email"[^>]*aria-invalid="true" aria-describedby="form-error" autofocus>/);
    expect(empty.html).toMatch(/<input id="password"[^>]*maxlength="1024" >/);

    const wrong = keep(await browser.visit(login.action, { form: { ...login.fields, email: ALICE.email, password: 'not it at all' } }));
    expect(wrong.status).toBe(401);
    expect(wrong.html).toContain('이메일 또는 비밀번호가 올바르지 않습니다.');
    expect(wrong.html).toMatch(/<input id="password"[^>]*autocomplete="current-password"[^>]*aria-invalid="true"/);
    expect(wrong.html).toMatch(/<input id="email"[^>]*autocomplete="username webauthn"[^>]*aria-invalid="true"[^>]*autofocus/);
  });

  it('shows the consent page with the app’s links and what is new apart from what was allowed before', async () => {
    const browser = new LanguageBrowser(server.issuer, 'en');
    const first = await loginPage(browser, {}, 'openid email');
    const consent = keep(await submitPassword(browser, first, ALICE));
    expect(consent.html).toContain('Allow Photo Album to access your account?');
    expect(consent.html).toContain('<img class="client-logo" src="https://album.example/logo.png" alt=""');
    expect(consent.html).toContain('<a href="https://album.example/about" rel="noopener noreferrer">About this app</a>');
    expect(consent.html).toContain('<a href="https://album.example/privacy" rel="noopener noreferrer">Privacy policy</a>');
    expect(consent.html).toContain('<a href="https://album.example/terms" rel="noopener noreferrer">Terms of service</a>');
    expect(consent.html).toMatch(/class="scopes scopes-new"[^>]*>\s*<li>See your email address<\/li>/);
    expect(consent.html).not.toContain('scopes-granted');
    expect((await allowAccess(browser, consent)).redirectedTo?.origin).toBe(APP);

    // Asking for more later: the new scope is listed as new, email as already allowed, in Korean.
    const more = keep(await loginPage(browser, { ui_locales: 'ko' }, 'openid email profile'));
    expect(more.html).toContain('/confirm"');
    const newList = /class="scopes scopes-new"[^>]*>([\s\S]*?)<\/ul>/.exec(more.html)?.[1] ?? '';
    const grantedList = /class="scopes scopes-granted">([\s\S]*?)<\/ul>/.exec(more.html)?.[1] ?? '';
    expect(newList).toContain('이름과 프로필 정보 보기');
    expect(newList).not.toContain('이메일 주소 보기');
    expect(grantedList).toContain('이메일 주소 보기');
    expect(more.html).toContain('<h2 id="granted-heading">이미 허용하신 권한:</h2>');
    expect(more.html).toContain('개인정보 처리방침');
  });

  it('words each requested claim in plain words', async () => {
    const browser = new LanguageBrowser(server.issuer, 'en');
    const claims = JSON.stringify({ userinfo: { picture: null } });
    const page = await loginPage(browser, { claims, ui_locales: 'en' }, 'openid');
    const consent = keep(await submitPassword(browser, page, ALICE));
    expect(consent.html).toContain('<li>See your profile picture</li>');
  });

  it('shows the engine’s error page in Korean, with its English description set apart', async () => {
    const url = `${server.issuer}/authorize?client_id=nobody&response_type=code&scope=openid&ui_locales=ko&redirect_uri=${encodeURIComponent(`${APP}/cb`)}`;
    const page = keep(await new LanguageBrowser(server.issuer, 'en').visit(url));
    expect(page.status).toBe(400);
    expect(langOf(page.html)).toBe('ko');
    expect(page.html).toContain('<h1>문제가 발생했습니다</h1>');
    expect(page.html).toContain('회원님을 이곳으로 보낸 앱을 알 수 없거나');
    expect(page.html).toMatch(/자세한 내용\(영어\): <span lang="en">[^<]+<\/span>/);
    expect(page.html).toContain('<code>invalid_client</code>');
  });

  it('shows our own errors in the browser’s language, and keeps JSON in English', async () => {
    const korean = keep(await new LanguageBrowser(server.issuer, 'ko-KR').visit(`${server.issuer}/interaction/nope`));
    expect(korean.status).toBe(400);
    expect(korean.html).toContain('로그인 페이지가 만료되었거나 다른 브라우저에서 열렸습니다.');
    const missing = keep(await new LanguageBrowser(server.issuer, 'ko').visit(`${server.issuer}/no/such/page`));
    expect(missing.status).toBe(404);
    expect(missing.html).toContain('이 주소에는 아무것도 없습니다.');
    const json = await fetch(`${server.issuer}/interaction/nope`, { headers: { accept: 'application/json', 'accept-language': 'ko' } });
    expect(await json.json()).toMatchObject({ error: 'session_not_found', error_description: expect.stringContaining('has expired or was opened in another browser') });
  });

  it('asks to sign out in the language of the logout request', async () => {
    const browser = new LanguageBrowser(server.issuer, 'en');
    const page = await loginPage(browser, {}, 'openid');
    await allowAccess(browser, await submitPassword(browser, page, ALICE));

    const logout = keep(await browser.visit(`${server.issuer}/logout?ui_locales=ko&client_id=${WEB_APP.id}`));
    expect(logout.status).toBe(200);
    expect(langOf(logout.html)).toBe('ko');
    expect(logout.html).toContain('<h1>로그아웃하시겠습니까?</h1>');
    expect(logout.html).toContain('<strong>Photo Album</strong>에서 <strong>Gatehouse</strong> 로그아웃을 요청했습니다.');
    const form = findForm(logout.html, '/logout');
    const done = keep(await browser.visit(form.action, { form: { ...form.fields, logout: 'yes' } }));
    expect(done.html).toContain('<h1>You are signed out</h1>');
  });

  it('words the engine’s self-submitting form in the page’s language, with a button for browsers without JavaScript', async () => {
    // Without a session, the engine sends the logout request straight on with such a form.
    const page = await new LanguageBrowser(server.issuer, 'ko').visit(`${server.issuer}/logout`);
    expect(page.status).toBe(200);
    expect(langOf(page.html)).toBe('ko');
    expect(page.html).toContain('<h1>앱으로 돌아가는 중</h1>');
    expect(page.html).toMatch(/<noscript>[\s\S]*<button type="submit" class="primary" autofocus>계속<\/button>[\s\S]*<\/noscript>/);
    expect(page.html).toMatch(/<input type="hidden" name="logout" value="yes">/);
    const csp = page.headers.get('content-security-policy') ?? '';
    const script = /<script>([\s\S]*?)<\/script>/.exec(page.html)?.[1] ?? '';
    expect(csp).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
  });

  it('shows the device code page in Korean', async () => {
    const page = keep(await new LanguageBrowser(server.issuer, 'ko').visit(`${server.issuer}/device`));
    expect(page.status).toBe(200);
    expect(langOf(page.html)).toBe('ko');
    expect(page.html).toContain('<label for="user_code">코드</label>');
    expect(page.html).toMatch(/<input id="user_code"[^>]*autocomplete="one-time-code"/);
  });

  it('keeps the stylesheets local: no imports, fonts or URLs elsewhere', async () => {
    for (const path of ['/assets/gatehouse.css', '/assets/brand.css']) {
      const response = await fetch(`${server.issuer}${path}`);
      expect(response.status, path).toBe(200);
      const css = await response.text();
      expect(css, path).not.toMatch(/@import|@font-face|url\(\s*['"]?(https?:)?\/\//i);
    }
  });

  it('loads nothing from another origin on any page it rendered', () => {
    expect(rendered.length).toBeGreaterThan(10);
    for (const page of rendered) {
      expect(langOf(page.html), page.url).toMatch(/^(en|ko)$/);
      // The one exception: an app's own registered logo, which the app chose.
      const external = loadedUrls(page.html).filter((url) => /^(https?:)?\/\//i.test(url) && url !== ALBUM_LOGO);
      expect(external, page.url).toStrictEqual([]);
      // Scripts only from this server's own paths, never inline (CSP script-src 'self').
      expect(page.html, page.url).not.toMatch(/<script\b(?![^>]*\ssrc="\/[^/"])|<script\b[^>]*>[^<]|<style\b|\sstyle=|\son[a-z]+=/i);
    }
  });
});

describe.each(await flavours())('branding and the default language on %s', (flavour) => {
  let server: TestGatehouse;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-brand-'));
    writeFileSync(join(dir, 'site.css'), '.card { border: 2px solid rebeccapurple; }\n');
    writeFileSync(join(dir, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>\n');
    mkdirSync(join(dir, 'views', 'partials'), { recursive: true });
    // An override of a partial reaches every page that includes it.
    const bottom = readFileSync(join(VIEWS_DIR, 'partials', 'bottom.ejs'), 'utf8');
    writeFileSync(join(dir, 'views', 'partials', 'bottom.ejs'), bottom.replace('</main>', '</main>\n  <p class="acme-note"><%= productName %>: <%= t(\'layout.support\') %></p>'));
    const env = {
      DEFAULT_LANGUAGE: 'ko',
      BRAND_NAME: 'Acme ID',
      BRAND_PRIMARY_COLOR: '#0a7d33',
      BRAND_SUPPORT_URL: 'mailto:help@acme.example',
      BRAND_CSS_FILE: join(dir, 'site.css'),
      BRAND_LOGO_FILE: join(dir, 'logo.svg'),
      BRAND_TEMPLATES_DIR: join(dir, 'views'),
    };
    server = await startTestGatehouse(flavour, { env, clients: [PHOTO_ALBUM] });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uses DEFAULT_LANGUAGE when the request names no language we have, and ui_locales over it', async () => {
    const browser = new LanguageBrowser(server.issuer, 'fr');
    const { page } = await startAuthorization(browser, server.issuer, WEB_APP, 'openid');
    expect(langOf(page.html)).toBe('ko');
    expect(titleOf(page.html)).toBe('로그인 · Acme ID');
    const english = await new LanguageBrowser(server.issuer, 'fr').visit(`${server.issuer}/device?ui_locales=en`);
    expect(langOf(english.html)).toBe('en');
    expect(english.html).toContain('<h1>Connect a device</h1>');
    const korean = await new LanguageBrowser(server.issuer, 'fr').visit(`${server.issuer}/no/such/page`);
    expect(korean.html).toContain('<title>문제가 발생했습니다 · Acme ID</title>');
  });

  it('shows the product name, logo, colour, support link, custom CSS and template overrides', async () => {
    const page = await new LanguageBrowser(server.issuer, 'en').visit(`${server.issuer}/device`);
    for (const markup of [
      '<title>Connect a device · Acme ID</title>',
      '<span class="brand-name">Acme ID</span>',
      '<img class="brand-logo" src="/assets/brand-logo" alt="" height="32">',
      ...['gatehouse.css', 'brand.css', 'custom.css'].map((sheet) => `<link rel="stylesheet" href="/assets/${sheet}">`),
      '<a href="mailto:help@acme.example">Help and support</a>',
      // From the partial the templates directory overrides.
      '<p class="acme-note">Acme ID: Help and support</p>',
    ]) {
      expect(page.html).toContain(markup);
    }

    const brand = await fetch(`${server.issuer}/assets/brand.css`);
    expect(brand.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await brand.text()).toContain('--primary: #0a7d33;');
    const custom = await fetch(`${server.issuer}/assets/custom.css`);
    expect(custom.status).toBe(200);
    expect(await custom.text()).toContain('rebeccapurple');
    const logo = await fetch(`${server.issuer}/assets/brand-logo`);
    expect(logo.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
    expect(logo.headers.get('content-security-policy')).toContain('sandbox');
  });
});
