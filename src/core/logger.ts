// Structured JSON logs (pino). Credentials never reach a log line: the value under a key that
// names a credential is replaced at any depth (request bodies, engine params, headers, nested
// context), and credentials inside strings (a logged URL such as /logout?id_token_hint=…, or an
// "Authorization: Bearer …" value) are masked, in messages and error messages too.
import type { ServerResponse } from 'node:http';
import { destination as outputStream, pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger };

/** The header that carries a request's id to the caller. */
const REQUEST_ID_HEADER = 'X-Request-Id';

/** Each response's request id, kept apart from its header: a handler may take the header off (Koa's error handler clears every header). */
const requestIds = new WeakMap<ServerResponse, string>();

/** Gives the request this response answers its id (http/request-log.ts, as every request arrives), and sends it back in X-Request-Id. */
export function identifyResponse(res: ServerResponse, requestId: string): void {
  requestIds.set(res, requestId);
  res.setHeader(REQUEST_ID_HEADER, requestId);
}

/** The id given to the request this response answers, for every log line about it (the request's own, the engine's, errors). */
export function requestIdOf(res: ServerResponse): string | undefined {
  return requestIds.get(res);
}

const CENSOR = '[redacted]';

/** Exact key names (lower case, without `_` and `-`) that hold a code or other one-time credential. */
const CREDENTIAL_KEYS = new Set(['code', 'usercode', 'devicecode', 'recoverycode', 'recoverycodes', 'otp', 'totp', 'mfacode', 'xsrf', 'csrf', 'jwt']);
/** Key names ending like these hold credentials: client_secret, refresh_token, id_token_hint, set-cookie, client_assertion, code_verifier… */
const CREDENTIAL_SUFFIXES = ['token', 'tokens', 'tokenhint', 'cookie', 'cookies', 'authorization', 'assertion', 'verifier'];
/** Key names containing these hold credentials: password, passwordHash, clientSecret, secrets, privateJwk… */
const CREDENTIAL_PARTS = ['password', 'secret', 'private'];

function namesCredential(key: string): boolean {
  const name = key.toLowerCase().replace(/[-_]/g, '');
  return CREDENTIAL_KEYS.has(name) || CREDENTIAL_SUFFIXES.some((suffix) => name.endsWith(suffix)) || CREDENTIAL_PARTS.some((part) => name.includes(part));
}

/**
 * The answers for the key names seen so far: a log line's keys are nearly always the same few
 * dozen. Bounded in number and length, since request bodies and engine params bring keys a caller
 * chose.
 */
const KNOWN_KEYS = new Map<string, boolean>();
const KNOWN_KEYS_LIMIT = 1000;
const KNOWN_KEY_MAX_LENGTH = 64;

export function isCredentialKey(key: string): boolean {
  const known = KNOWN_KEYS.get(key);
  if (known !== undefined) return known;
  const answer = namesCredential(key);
  if (KNOWN_KEYS.size < KNOWN_KEYS_LIMIT && key.length <= KNOWN_KEY_MAX_LENGTH) KNOWN_KEYS.set(key, answer);
  return answer;
}

const QUERY_CREDENTIAL = /([?&#;]\s*(?:code|user_code|device_code|code_verifier|token|access_token|refresh_token|id_token|id_token_hint|logout_token|client_secret|client_assertion|password|xsrf)=)[^&#\s"';]*/gi;
const AUTH_SCHEME = /\b(Bearer|Basic|DPoP)\s+[\w\-.~+/]+=*/gi;

/** Masks credentials that appear inside a string (URL query parameters, authorization header values). */
/** The password in a URL's user information: smtp://user:pass@host, postgresql://user:pass@host. */
const URL_PASSWORD = /(\b[a-z][\w+.-]*:\/\/[^\s/:@"']*:)[^\s/@"']+@/gi;

export function maskCredentialsInText(text: string): string {
  // Each pattern needs a character most logged strings (ids, paths, names) lack: skip its scan then.
  let masked = text.includes('=') ? text.replace(QUERY_CREDENTIAL, `$1${CENSOR}`) : text;
  masked = masked.replace(AUTH_SCHEME, `$1 ${CENSOR}`);
  return masked.includes('@') ? masked.replace(URL_PASSWORD, `$1${CENSOR}@`) : masked;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A copy of `value` with every credential replaced; objects that are not plain (errors, buffers) are left to pino's serializers. */
export function redactCredentials(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskCredentialsInText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 16) return CENSOR;
  if (seen.has(value)) return '[Circular]';
  if (Array.isArray(value)) {
    seen.add(value);
    return value.map((item) => redactCredentials(item, depth + 1, seen));
  }
  if (!isPlainObject(value)) return value;
  seen.add(value);
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = isCredentialKey(key) && item != null ? CENSOR : redactCredentials(item, depth + 1, seen);
  }
  return copy;
}

/** What pino replaces with its request or response serializer's summary before formatters.log sees it. */
function summarisedAsHttp(value: object): boolean {
  const candidate = value as { method?: unknown; headers?: unknown; socket?: unknown; setHeader?: unknown };
  return Boolean(candidate.method && candidate.headers && candidate.socket) || typeof candidate.setHeader === 'function';
}

function redactObject(object: Record<string, unknown>): Record<string, unknown> {
  return redactCredentials(object) as Record<string, unknown>;
}

/** A batch is handed on once it holds this many bytes, or BATCH_WAIT_MS after its first line. */
const BATCH_BYTES = 2048;
/** A pipe keeps a write of up to 4 KB whole (PIPE_BUF): workers sharing one never mix lines of up to that size. */
const WRITE_MAX_BYTES = 4096;
const BATCH_WAIT_MS = 100;

/** The server's log output: pino's, with the lines waiting written out at once when asked. */
export type LogOutput = DestinationStream & {
  /** Writes what waits before returning (pino calls it after a fatal line). */
  flushSync(): void;
  /** The same, for pino's `logger.flush()`; `done` is called once it is written. */
  flush(done?: (error?: Error) => void): void;
};

/**
 * Standard output as the server writes its log: lines gathered, and handed to pino's own
 * asynchronous standard output (its default, which writes off the main thread and holds what a
 * slow reader has not taken yet) once 2 KB wait or 100 ms after the first of them; written out
 * at once on a fatal line, on `logger.flush()` and when the process exits. A write per line cost
 * a request about 20 µs of CPU at LOG_LEVEL=info, a tenth of a discovery request
 * (test/bench/ROUNDS.md, round 32). Each write holds whole lines and at most 4 KB, unless one line
 * is longer. A process that ends without running its exit handlers (SIGKILL, an unhandled signal,
 * running out of memory) loses the lines still waiting: under 2 KB, from the last 100 ms or, when
 * the event loop is busy, a little longer. A batch already handed to the pool when the process
 * exits is written only if the pool gets to it first, as with pino's default output.
 */
export function batchedStdout(): LogOutput {
  const out = outputStream({ dest: 1, sync: false, maxWrite: WRITE_MAX_BYTES });
  // For what must be out before the call returns: handed to `out`, a batch would start a write on
  // the pool that its flushSync leaves to finish on its own, and an exiting process never waits for.
  const outNow = outputStream({ dest: 1, sync: true, maxWrite: WRITE_MAX_BYTES });
  let batch = '';
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const take = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const lines = batch;
    batch = '';
    bytes = 0;
    return lines;
  };
  const handOn = () => {
    const lines = take();
    if (lines) out.write(lines);
  };
  const flushSync = () => {
    const lines = take();
    try {
      // The batches handed on before these lines first.
      out.flushSync();
      if (lines) outNow.write(lines);
    } catch {
      // Standard output is gone (a closed pipe): nothing is left to write to.
    }
  };
  // After pino's own exit handler for `out`, registered as it was made.
  process.once('exit', flushSync);
  return {
    write(line: string) {
      const length = Buffer.byteLength(line);
      if (bytes + length > WRITE_MAX_BYTES) handOn();
      batch += line;
      bytes += length;
      if (bytes >= BATCH_BYTES) handOn();
      else timer ??= setTimeout(handOn, BATCH_WAIT_MS).unref();
    },
    flushSync,
    flush(done) {
      flushSync();
      done?.();
    },
  };
}

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level: config.logLevel,
      base: { service: 'gatehouse' },
      formatters: { log: redactObject },
      serializers: {
        // The message, after interpolation (and an error's message when it stands in for one).
        msg: (message: string) => maskCredentialsInText(String(message)),
        // pino's error serializer returns an object with its own prototype: copy it to redact it.
        err: (error: Error) => redactCredentials({ ...stdSerializers.err(error) }),
      },
      hooks: {
        // A merging object goes through formatters.log, and a message string through the msg
        // serializer after interpolation. The hook redacts what neither sees: the values
        // interpolated into the message (logger.info('%o', value)), a message that is not a
        // string, and a merging object pino first turns into a request's or response's summary.
        logMethod(args, method) {
          const merging = args[0] !== null && typeof args[0] === 'object' ? (args[0] as object) : undefined;
          const fromIndex = merging !== undefined && typeof args[1] === 'string' ? 2 : 1;
          const redactMerging = merging !== undefined && summarisedAsHttp(merging);
          if (args.length <= fromIndex && !redactMerging) return method.apply(this, args);
          method.apply(this, args.map((arg: unknown, i) => (i >= fromIndex || (i === 0 && redactMerging) ? redactCredentials(arg) : arg)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
  // Child bindings bypass formatters.log; children inherit this override from their parent.
  const createChild = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, options) {
    return createChild.call(this, redactObject(bindings), options);
  } as Logger['child'];
  return logger;
}
