// The benchmark's scenarios. Each prepares what it needs on a server (tokens from real sign-ins)
// and then runs for a fixed time at a fixed number of connections: autocannon for single
// requests, a small driver of our own for the whole authorization-code flow.
import autocannon from 'autocannon';
import { Browser, completeSignIn } from '../helpers/browser.js';
import { authorizationUrl, basicAuth, redeemCode } from '../helpers/code-flow.js';
import { MACHINE_CLIENT, JWT_API, OPAQUE_API, PASSWORD, WEB_CLIENT, userEmail } from './fixtures.js';

export const SCENARIOS = ['discovery', 'jwks', 'cc-opaque', 'cc-jwt', 'userinfo', 'refresh', 'code-flow', 'session-flow'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const SCENARIO_TITLES: Record<ScenarioName, string> = {
  discovery: 'GET /.well-known/openid-configuration',
  jwks: 'GET /jwks',
  'cc-opaque': 'POST /token client_credentials (opaque access token)',
  'cc-jwt': 'POST /token client_credentials (JWT access token, RFC 9068)',
  userinfo: 'GET /userinfo with a bearer token',
  refresh: 'POST /token refresh_token (rotating)',
  'code-flow': 'authorization code flow with PKCE: /authorize → sign-in → /token (flows/s)',
  'session-flow': 'authorization code flow with PKCE, already signed in: /authorize → /token (flows/s)',
};

/** The scenarios whose rate counts whole flows, not requests. */
export const FLOW_SCENARIOS: readonly ScenarioName[] = ['code-flow', 'session-flow'];

export interface RunResult {
  /** Requests (or flows) per second. */
  rate: number;
  p50: number;
  p99: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
  total: number;
  /** The server's own CPU time per request (or flow), in ms: steadier than rates on a busy machine. */
  cpuPerRequestMs?: number;
  /** The part of it on the server's main threads (Node's event loops); undefined for Authlib. */
  mainThreadCpuPerRequestMs?: number;
}

export interface RunOptions {
  connections: number;
  durationSeconds: number;
}

const FORM = 'application/x-www-form-urlencoded';

interface TokenSet {
  access_token: string;
  refresh_token?: string;
}

/**
 * One whole authorization: authorize with PKCE, whatever pages appear (none when `browser`
 * already holds a session and consent was given), the code exchange. Returns the tokens.
 */
export async function signIn(url: string, user: number, { scope, consent }: { scope: string; consent: boolean }, browser = new Browser(url)): Promise<TokenSet> {
  const { url: authorize, verifier } = authorizationUrl(url, WEB_CLIENT, { scope, prompt: consent ? 'consent' : undefined });
  const back = await completeSignIn(browser, await browser.visit(authorize.href), { email: userEmail(user), password: PASSWORD });
  return exchangeCode(url, back, verifier);
}

/** An authorization that must need no page: `browser` is signed in and consent was given. */
async function authorizeSignedIn(url: string, browser: Browser): Promise<void> {
  const { url: authorize, verifier } = authorizationUrl(url, WEB_CLIENT, { scope: 'openid email', prompt: undefined });
  await exchangeCode(url, (await browser.visit(authorize.href)).redirectedTo, verifier);
}

/** The app's part: the code from where the browser was sent back, redeemed with the PKCE verifier. */
async function exchangeCode(url: string, back: URL | undefined, verifier: string): Promise<TokenSet> {
  const code = back?.searchParams.get('code');
  if (!code) throw new Error(`no code in the redirect: ${back?.href ?? 'a page instead of a redirect'}`);
  const { status, body } = await redeemCode(url, WEB_CLIENT, code, verifier);
  if (status !== 200) throw new Error(`code exchange answered ${status}: ${JSON.stringify(body)}`);
  return body;
}

function fromAutocannon(result: autocannon.Result): RunResult {
  return {
    rate: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    total: result.requests.total,
  };
}

function cannon(options: autocannon.Options): Promise<autocannon.Result> {
  return autocannon({ timeout: 10, ...options });
}

/** A prepared scenario on one server: call run() for each measured (or warm-up) period. */
export interface PreparedScenario {
  /** Work to do before each run, outside what it measures. */
  beforeRun?(options: RunOptions): Promise<void>;
  run(options: RunOptions): Promise<RunResult>;
}

export async function prepareScenario(name: ScenarioName, url: string, users: number): Promise<PreparedScenario> {
  switch (name) {
    case 'discovery':
    case 'jwks': {
      const path = name === 'discovery' ? '/.well-known/openid-configuration' : '/jwks';
      return { run: async (o) => fromAutocannon(await cannon({ url: `${url}${path}`, connections: o.connections, duration: o.durationSeconds })) };
    }
    case 'cc-opaque':
    case 'cc-jwt': {
      const body = new URLSearchParams({ grant_type: 'client_credentials', resource: name === 'cc-jwt' ? JWT_API : OPAQUE_API, scope: 'read' }).toString();
      const check = await fetch(`${url}/token`, { method: 'POST', headers: { authorization: basicAuth(MACHINE_CLIENT), 'content-type': FORM }, body });
      if (check.status !== 200) throw new Error(`${name} at ${url}: /token answered ${check.status}: ${await check.text()}`);
      const token = ((await check.json()) as TokenSet).access_token;
      if ((token.split('.').length === 3) !== (name === 'cc-jwt')) throw new Error(`${name}: unexpected access token format`);
      return {
        run: async (o) =>
          fromAutocannon(
            await cannon({ url: `${url}/token`, method: 'POST', headers: { authorization: basicAuth(MACHINE_CLIENT), 'content-type': FORM }, body, connections: o.connections, duration: o.durationSeconds }),
          ),
      };
    }
    case 'userinfo': {
      const { access_token } = await signIn(url, 0, { scope: 'openid email', consent: false });
      return {
        run: async (o) => fromAutocannon(await cannon({ url: `${url}/userinfo`, headers: { authorization: `Bearer ${access_token}` }, connections: o.connections, duration: o.durationSeconds })),
      };
    }
    case 'refresh': {
      // Every refresh rotates the token, so each request takes a token from the pool and its
      // answer puts the new one back; the pool is larger than the number of connections.
      // Requests cut off when a run ends lose their token, so the pool is topped up before each run.
      const pool: string[] = [];
      let signIns = 0;
      const topUp = async (size: number) => {
        while (pool.length < size) {
          const { refresh_token } = await signIn(url, signIns++ % users, { scope: 'openid email offline_access', consent: true });
          if (!refresh_token) throw new Error('refresh: no refresh_token from the code exchange');
          pool.push(refresh_token);
        }
      };
      await topUp(users * 2);
      const requests: autocannon.Request[] = [
        {
          method: 'POST',
          path: '/token',
          headers: { authorization: basicAuth(WEB_CLIENT), 'content-type': FORM },
          setupRequest(request) {
            // An empty pool (tokens lost to failed requests) sends a token that fails: counted as errors.
            const token = pool.shift() ?? 'pool-exhausted';
            return { ...request, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString() };
          },
          onResponse(status, body) {
            if (status !== 200) return;
            const next = (JSON.parse(body) as TokenSet).refresh_token;
            if (next) pool.push(next);
          },
        },
      ];
      return {
        beforeRun: (o) => topUp(o.connections * 2),
        async run(o) {
          return fromAutocannon(await cannon({ url, requests, connections: o.connections, duration: o.durationSeconds }));
        },
      };
    }
    case 'code-flow': {
      // Consent was given once (prompt=consent); the measured flows show the sign-in page only.
      for (let i = 0; i < users; i++) await signIn(url, i, { scope: 'openid email', consent: true });
      return { run: (o) => runFlows(o, (worker) => signIn(url, worker, { scope: 'openid email', consent: false })) };
    }
    case 'session-flow': {
      // Each connection is one person's browser, signed in (and consent given) before the runs;
      // the measured flows are the authorization request, answered at once with a code, and
      // the code exchange.
      const browsers: Browser[] = [];
      const signInBrowsers = async (count: number) => {
        while (browsers.length < count) {
          const browser = new Browser(url);
          await signIn(url, browsers.length % users, { scope: 'openid email', consent: true }, browser);
          browsers.push(browser);
        }
      };
      return {
        beforeRun: (o) => signInBrowsers(o.connections),
        run: (o) => runFlows(o, (worker) => authorizeSignedIn(url, browsers[worker] as Browser)),
      };
    }
  }
}

const percentile = (sorted: number[], p: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number) : NaN);

/** `connections` workers, each running `flow` for its own person again and again until the time is up. */
async function runFlows({ connections, durationSeconds }: RunOptions, flow: (worker: number) => Promise<unknown>): Promise<RunResult> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationSeconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await flow(worker);
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, total: latencies.length + errors };
}
