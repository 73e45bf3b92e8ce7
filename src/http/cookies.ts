// Reading the cookies our own routes set (the engine reads its own). A Cookie header is input
// like any other: a value that is not valid percent-encoding (`%`, `%zz`) reads as absent, so
// the route answers as it does without the cookie (a 4xx), never with an exception.
import type { Request } from 'express';

/** Express's res.cookie() encodes values with encodeURIComponent; this undoes it, or returns undefined. */
function decodeCookieValue(raw: string): string | undefined {
  const value = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** The first cookie called `name` in the request's Cookie header, decoded; undefined when absent or malformed. */
export function readCookie(req: Request, name: string): string | undefined {
  for (const pair of (req.get('cookie') ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return decodeCookieValue(pair.slice(eq + 1).trim());
  }
  return undefined;
}

/**
 * The sign-in handoff after an accepted invitation (people/sign-in-handoff.ts): set by the
 * invitation page, read once by the next sign-in page (interactions.ts), so only /interaction
 * gets it. HttpOnly, SameSite=Lax (an app's sign-in start is a top-level navigation), Secure with
 * an https ISSUER.
 */
export const HANDOFF_COOKIE = 'gatehouse.handoff';
export const HANDOFF_COOKIE_PATH = '/interaction';
