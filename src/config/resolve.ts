// The settings whose value or validity depends on other settings, worked out once every row has
// parsed. A value that did not parse is undefined here (its problem is already reported), and
// each step looks only at what parsed, so one run reports every problem. Each problem names
// the variable and gives an example.
import { existsSync, statSync } from 'node:fs';
import { SECRETS_EXAMPLE } from './parsers.js';
import type { ParsedValues, SETTINGS, VariableName } from './settings.js';

/** The parsed rows; undefined where a value did not parse. */
export type Parsed = ParsedValues<typeof SETTINGS, undefined>;

const ISSUER_EXAMPLE = 'https://id.example.com';

/** ISSUER, or http://localhost:$PORT outside production; without a trailing slash. */
export function resolveIssuer(parsed: Parsed, production: boolean, problems: string[]): string {
  const issuer = parsed.issuer ?? (production ? undefined : `http://localhost:${parsed.server.port ?? 3000}`);
  if (!issuer) {
    problems.push(`ISSUER: is required in production (e.g. ${ISSUER_EXAMPLE})`);
    return '';
  }
  if (!URL.canParse(issuer)) {
    problems.push(`ISSUER: must be an absolute URL (e.g. ${ISSUER_EXAMPLE})`);
    return issuer;
  }
  const url = new URL(issuer);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push(`ISSUER: must be an http(s) URL (e.g. ${ISSUER_EXAMPLE})`);
  else if (production && url.protocol !== 'https:') problems.push(`ISSUER: must be an https URL in production (e.g. ${ISSUER_EXAMPLE})`);
  if (url.search || url.hash) problems.push(`ISSUER: must not have a query or fragment (e.g. ${ISSUER_EXAMPLE})`);
  return url.href.replace(/\/$/, '');
}

/**
 * PASSKEY_RP_ID, or the ISSUER's host. A browser accepts an RP ID only when it is the page's host
 * or a registrable parent of it, so anything else would make every passkey ceremony fail.
 */
export function resolvePasskeyRpId(parsed: Parsed, issuer: string, problems: string[]): string {
  const host = URL.canParse(issuer) ? new URL(issuer).hostname : '';
  const rpId = parsed.passkeys.rpId?.toLowerCase().replace(/\.$/, '');
  if (rpId === undefined) return host;
  const isIpLiteral = /^[\d.]+$/.test(host) || host.startsWith('[');
  if (isIpLiteral || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(rpId) || !(host === rpId || host.endsWith(`.${rpId}`))) {
    problems.push(`PASSKEY_RP_ID: must be the ISSUER's host (${host}) or a parent domain of it (e.g. example.com for id.example.com)`);
  }
  return rpId;
}

/**
 * Gatehouse listens on plain HTTP, so an https issuer in production means a TLS-terminating
 * proxy in front: without trusting it, cookies would lack Secure (and SameSite=None ones would be
 * dropped by browsers) and discovery would name http endpoints.
 */
export function checkProxy(parsed: Parsed, issuer: string, production: boolean, problems: string[]): void {
  if (production && issuer.startsWith('https:') && parsed.server.trustProxy === false) {
    problems.push('TRUST_PROXY: must be set when ISSUER is https in production, to trust the TLS-terminating proxy in front of Gatehouse (e.g. 1)');
  }
}

export function checkMetrics({ metrics, server }: Parsed, problems: string[]): void {
  if (metrics.port !== undefined && metrics.port === server.port) problems.push(`METRICS_PORT: must differ from PORT (${server.port}), or be left unset to serve /metrics on PORT`);
  if (metrics.host !== undefined && metrics.port === undefined) problems.push('METRICS_HOST: applies only with METRICS_PORT (e.g. METRICS_PORT=9464); set both or neither');
}

/** Production needs SECRETS; elsewhere a missing one is generated (load.ts) once all is valid. */
export function checkSecrets(parsed: Parsed, production: boolean, problems: string[]): void {
  if (production && parsed.secrets?.length === 0) problems.push(`SECRETS: is required in production (e.g. ${SECRETS_EXAMPLE})`);
}

/** DEMO: on by default in development only, and refused in production. */
export function resolveDemo(parsed: Parsed, production: boolean, problems: string[]): boolean {
  const demo = parsed.demo ?? (!production && parsed.nodeEnv !== 'test');
  if (demo && production) problems.push('DEMO: the demo client and user are for development only; unset DEMO or set DEMO=false in production');
  return demo;
}

/** Every instance must have published a new key before any signs with it, and it must sign before it is replaced. */
export function checkKeyLifecycle({ keys }: Parsed, production: boolean, problems: string[]): void {
  const { refreshInterval, activationDelay, rotationInterval } = keys;
  if (production && refreshInterval !== undefined && activationDelay !== undefined && refreshInterval > 0 && activationDelay < refreshInterval) {
    problems.push(`KEY_ACTIVATION_DELAY: must be at least KEY_REFRESH_INTERVAL (${refreshInterval}s) in production, so every instance publishes a new key before any signs with it (e.g. 1h)`);
  }
  if (rotationInterval !== undefined && activationDelay !== undefined && rotationInterval > 0 && rotationInterval <= activationDelay) {
    problems.push(`KEY_ROTATION_INTERVAL: must be longer than KEY_ACTIVATION_DELAY (${activationDelay}s), or each key would be replaced before it ever signs (e.g. 90d)`);
  }
}

/** A path as given, made absolute: relative to the configuration file when it came from there. */
export type PathOf = (name: VariableName, value: string) => string;

/** The files and URLs the pages load: URLs checked, paths made absolute and checked. */
export function resolveBranding({ branding }: Parsed, production: boolean, pathOf: PathOf, problems: string[]) {
  const { logoUrl } = branding;
  const linkable = (url: URL) => url.protocol === 'https:' || (!production && url.protocol === 'http:');
  if (logoUrl && !(/^\/(?!\/)/.test(logoUrl) || (URL.canParse(logoUrl) && linkable(new URL(logoUrl))))) {
    problems.push('BRAND_LOGO_URL: must be an https URL or a path on this server (e.g. https://cdn.example.com/logo.svg or /assets/logo.svg)');
  }
  const logoFile = branding.logoFile && pathOf('BRAND_LOGO_FILE', branding.logoFile);
  if (logoFile && !(/\.(svg|png|webp|jpe?g|gif)$/i.test(logoFile) && isFile(logoFile))) {
    problems.push(`BRAND_LOGO_FILE: ${logoFile} is not an svg, png, webp, jpeg or gif file (e.g. ./branding/logo.svg)`);
  }
  const cssFile = branding.cssFile && pathOf('BRAND_CSS_FILE', branding.cssFile);
  if (cssFile && !isFile(cssFile)) problems.push(`BRAND_CSS_FILE: ${cssFile} is not a file (e.g. ./branding/site.css)`);
  const templatesDir = branding.templatesDir && pathOf('BRAND_TEMPLATES_DIR', branding.templatesDir);
  if (templatesDir && !(existsSync(templatesDir) && statSync(templatesDir).isDirectory())) problems.push(`BRAND_TEMPLATES_DIR: ${templatesDir} is not a folder (e.g. ./branding/views)`);
  return { logoFile, cssFile, templatesDir };
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile();

/**
 * The sender (MAIL_FROM, or BRAND_NAME <no-reply@ISSUER host>) and PASSWORD_RESET's default. In
 * production a feature that sends mail needs SMTP_URL: the development fallback (files in
 * MAIL_DIR) would silently lose every mail.
 */
export function resolveMail({ mail, recovery, branding, signUp }: Parsed, issuer: string, production: boolean, problems: string[]) {
  const host = URL.canParse(issuer) ? new URL(issuer).hostname : 'localhost';
  const from = mail.from ?? `"${(branding.productName ?? 'Gatehouse').replace(/["\\\r\n]/g, '')}" <no-reply@${host}>`;
  const passwordReset = recovery.passwordReset ?? (!production || mail.smtpUrl !== undefined);
  if (production && !mail.smtpUrl && recovery.passwordReset) {
    problems.push('SMTP_URL: is required in production when PASSWORD_RESET=true, so reset links reach people (e.g. smtps://user:pass@smtp.example.com:465), or set PASSWORD_RESET=false');
  }
  if (production && !mail.smtpUrl && recovery.requireVerifiedEmail) {
    problems.push('SMTP_URL: is required in production when REQUIRE_VERIFIED_EMAIL=true, so verification links reach people (e.g. smtps://user:pass@smtp.example.com:465)');
  }
  if (production && !mail.smtpUrl && signUp.mode === 'open') {
    problems.push('SMTP_URL: is required in production when SIGNUP=open, so new accounts can verify their addresses (e.g. smtps://user:pass@smtp.example.com:465), or set SIGNUP=closed');
  }
  return { from, passwordReset };
}
