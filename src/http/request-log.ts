// One log line per request, and a request id that ties it to every other line about that
// request. A caller's X-Request-Id is kept when it is printable and at most 128 characters
// (a proxy's or the app's own id); otherwise a new UUID replaces it. Either way it is sent back
// in X-Request-Id. The line names the path without its query (which may carry codes) and
// with long opaque segments masked: /interaction/<uid> holds the interaction cookie's value.
import { randomUUID } from 'node:crypto';
import { identifyResponse, requestIdOf, type Logger } from '../core/logger.js';
import type { ClosedListener, FrontStep } from './front.js';

const VALID_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** The engine's ids (interaction uids, 43 characters) and the like; no route name is this long. */
const OPAQUE_SEGMENT = /\/[\w-]{32,}(?=\/|$)/g;

function loggablePath(url: string): string {
  const path = (url.split('?', 1)[0] ?? '').replace(OPAQUE_SEGMENT, '/:id');
  return path.length > 512 ? `${path.slice(0, 512)}…` : path;
}

/** Gives the request its id, in the response's X-Request-Id, as it arrives. */
export const identifyRequest: FrontStep = function identifyRequest(req, res) {
  const offered = req.headers['x-request-id'];
  identifyResponse(res, typeof offered === 'string' && VALID_REQUEST_ID.test(offered) ? offered : randomUUID());
};

/** The request's line, once its response has closed; none when LOG_LEVEL is above info. */
export function logRequests(logger: Logger): ClosedListener {
  return function logRequest(req, res, url, seconds) {
    if (!logger.isLevelEnabled('info')) return;
    logger.info(
      {
        request_id: requestIdOf(res),
        method: req.method,
        path: loggablePath(url),
        status: res.statusCode,
        duration_ms: Math.round(seconds * 1e5) / 100,
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      'request',
    );
  };
}
