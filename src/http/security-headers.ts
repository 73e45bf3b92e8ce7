// Baseline response headers for everything we and the engine serve.
import type { RequestHandler } from 'express';

const CSP = [
  "default-src 'none'",
  // No script of ours; the engine adds the hash of its form_post auto-submit script here.
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  // No form-action: browsers apply it to the redirects that follow a form submission too,
  // and the consent form ends in a redirect to the client's redirect_uri, whose scheme may be
  // anything a native app registered (e.g. com.example.app:/callback).
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const securityHeaders: RequestHandler = function securityHeaders(_req, res, next) {
  res.set({
    'Content-Security-Policy': CSP,
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
  });
  next();
};
