// Response headers for everything we and the engine serve (helmet), and the no-store default
// for everything but the public documents that clients are meant to cache.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import helmet from 'helmet';
import { ROUTES } from '../oidc/provider.js';
import { pathOf, type FrontStep } from './front.js';

const noop = () => {};

export function securityHeaders({ issuer }: { issuer: string }): FrontStep {
  const setHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        // Our scripts are files under /assets; the engine adds the hash of its form_post auto-submit script here.
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        // The passkey script (views/assets/passkeys.js) fetches its WebAuthn options from here.
        connectSrc: ["'self'"],
        imgSrc: ["'self'", 'https:', 'data:'],
        // No form-action: browsers apply it to the redirects that follow a form submission too,
        // and the consent form ends in a redirect to the client's redirect_uri, whose scheme may be
        // anything a native app registered (e.g. com.example.app:/callback).
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    // Off: an app that opens sign-in in a popup needs `window.opener` once the popup is back on
    // the app's origin, and COOP same-origin would sever it for good.
    crossOriginOpenerPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
    // Browsers ignore HSTS over http; sending it from a local http issuer would only mislead.
    strictTransportSecurity: new URL(issuer).protocol === 'https:' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  // The headers depend on the configuration only: helmet works them out once, on a response that
  // is never sent, and every response gets the same list.
  const template = new ServerResponse(new IncomingMessage(new Socket()));
  setHeaders(template.req, template, noop);
  const headers = template.getHeaderNames().map((name) => [name, template.getHeader(name) as string | string[]] as const);
  return function setSecurityHeaders(_req, res) {
    for (const [name, value] of headers) res.setHeader(name, value);
  };
}

const PUBLIC_DOCUMENTS = new Set(['/.well-known/openid-configuration', ROUTES.jwks]);

/**
 * Discovery and the key set are the same for everyone (built from ISSUER, never from the request)
 * and are meant to be cached, briefly: a rotated-in key must reach relying parties well within
 * KEY_ACTIVATION_DELAY. Pages carry per-person state (sign-in, consent, errors) and must never be
 * stored by a browser or proxy; the engine marks its token responses no-store itself.
 */
export const PUBLIC_DOCUMENT_CACHE = 'public, max-age=300';

export const cacheControl: FrontStep = function cacheControl(req, res) {
  res.setHeader('Cache-Control', PUBLIC_DOCUMENTS.has(pathOf(req)) ? PUBLIC_DOCUMENT_CACHE : 'no-store');
};
