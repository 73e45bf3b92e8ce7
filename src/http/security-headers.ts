// Baseline response headers for everything we and the engine serve.
import type { RequestHandler } from 'express';

const CSP = [
  "default-src 'none'",
  // No script of ours; the engine adds the hash of its form_post auto-submit script here.
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  // Forms post to our own pages, and the engine's logout and resume forms to itself; the
  // final redirect to a client's redirect_uri is a navigation, which form-action also governs.
  "form-action 'self' https: http:",
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
