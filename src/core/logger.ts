// Structured JSON logs (pino). Credentials never reach a log line: the value under a key that
// names a credential is replaced at any depth (request bodies, engine params, headers, nested
// context), and credentials inside strings (a logged URL such as /logout?id_token_hint=…, or an
// "Authorization: Bearer …" value) are masked, in messages and error messages too.
import type { ServerResponse } from 'node:http';
import { destination as outputStream, pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger };

/** The header that carries a request's id (http/request-log.ts sets it on every response). */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** The id given to the request this response answers, for log lines written elsewhere (the engine's, errors). */
export function requestIdOf(res: Pick<ServerResponse, 'getHeader'>): string | undefined {
  const id = res.getHeader(REQUEST_ID_HEADER);
  return typeof id === 'string' ? id : undefined;
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
 * dozen. Bounded, since request bodies and engine params bring keys a caller chose.
 */
const KNOWN_KEYS = new Map<string, boolean>();
const KNOWN_KEYS_LIMIT = 1000;

export function isCredentialKey(key: string): boolean {
  const known = KNOWN_KEYS.get(key);
  if (known !== undefined) return known;
  const answer = namesCredential(key);
  if (KNOWN_KEYS.size < KNOWN_KEYS_LIMIT) KNOWN_KEYS.set(key, answer);
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

function redactObject(object: Record<string, unknown>): Record<string, unknown> {
  return redactCredentials(object) as Record<string, unknown>;
}

/** A batch is written once it holds this many bytes, or after BATCH_WAIT_MS. */
const BATCH_BYTES = 2048;
/** A pipe keeps a write of up to 4 KB whole (PIPE_BUF): workers sharing one never mix their lines. */
const WRITE_MAX_BYTES = 4096;
const BATCH_WAIT_MS = 100;

/**
 * Standard output as the server writes its log: lines gathered and written together once 2 KB
 * wait or 100 ms after the first of them, and whatever waits when the process exits or logs a
 * fatal line. A write(2) per line cost a request about 20 µs of CPU at LOG_LEVEL=info, a tenth of
 * a /userinfo (test/bench/ROUNDS.md, round 32). A process killed outright (SIGKILL, out of
 * memory) loses at most its last 100 ms of lines.
 */
export function batchedStdout(): DestinationStream & { flushSync(): void } {
  // pino's own standard output: each batch in one write, retried while a pipe is full.
  const out = outputStream({ dest: 1, sync: true });
  let batch = '';
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const flushSync = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (bytes === 0) return;
    const lines = batch;
    batch = '';
    bytes = 0;
    out.write(lines);
  };
  process.once('exit', flushSync);
  return {
    write(line: string) {
      const length = Buffer.byteLength(line);
      if (bytes + length > WRITE_MAX_BYTES) flushSync();
      batch += line;
      bytes += length;
      if (bytes >= BATCH_BYTES) flushSync();
      else timer ??= setTimeout(flushSync, BATCH_WAIT_MS).unref();
    },
    flushSync,
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
        // The merging object goes through formatters.log and the message through the msg
        // serializer, after interpolation; only the values interpolated into the message
        // (logger.info('%o', value)) bypass both, and only they are redacted here.
        logMethod(args, method) {
          const firstValue = typeof args[0] === 'object' ? 2 : 1;
          if (args.length <= firstValue) return method.apply(this, args);
          method.apply(this, args.map((arg: unknown, i) => (i < firstValue ? arg : redactCredentials(arg))) as Parameters<typeof method>);
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
