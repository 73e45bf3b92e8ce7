// The hooks Gatehouse runs around every engine request (oidc/hook-runner.ts) behave exactly as if
// each were a Koa middleware of its own, nested outermost first: the same order on the way in and
// out, the same `after`s skipped by an error, the same recoveries and the same `finally`s.
import type { KoaContextWithOIDC } from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import type { EngineHook } from '../../src/core/engine-types.js';
import { runEngineHooks } from '../../src/oidc/hook-runner.js';

type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<unknown>) => Promise<unknown>;

/** Koa's way of chaining middleware: each one's `next` runs the rest. */
const chain = (middleware: Middleware[]) => (ctx: KoaContextWithOIDC) => {
  const dispatch = (i: number): Promise<unknown> => (i < middleware.length ? (middleware[i] as Middleware)(ctx, () => dispatch(i + 1)) : Promise.resolve());
  return dispatch(0);
};

/** The reference: one hook as the middleware it stands for. */
const asMiddleware = (hook: EngineHook) =>
  async function middleware(ctx: KoaContextWithOIDC, next: () => Promise<unknown>) {
    hook.before?.(ctx);
    try {
      try {
        await next();
      } catch (error) {
        if (hook.recover && (await hook.recover(ctx, error))) return;
        throw error;
      }
      await hook.after?.(ctx);
    } finally {
      await hook.settle?.(ctx);
    }
  };

interface Case {
  routeThrows: boolean;
  /** Which hook's `after` throws, if any. */
  afterThrows?: string;
  /** Whether the recovering hook answers instead of the error. */
  recovers: boolean;
  /** Which `settle` throws, if any: the one that returns a promise, or the one that returns nothing. */
  settleThrows?: 'async' | 'sync';
}

/**
 * Five hooks, outermost first: plain, recovering, settling (with a promise), settling with nothing
 * to wait for (no promise), and async; each writes what it does to `log`.
 */
function hooksFor(log: string[], c: Case): EngineHook[] {
  const after = (name: string) => () => {
    log.push(`after ${name}`);
    if (c.afterThrows === name) throw new Error(`after ${name} failed`);
  };
  return [
    { before: () => log.push('before outer'), after: after('outer') },
    {
      after: after('recovering'),
      async recover(_ctx, error) {
        log.push(`recover ${(error as Error).message}`);
        return c.recovers;
      },
    },
    {
      before: () => log.push('before settling'),
      async settle() {
        log.push('settle');
        if (c.settleThrows === 'async') throw new Error('settle failed');
      },
    },
    {
      settle() {
        log.push('settle sync');
        if (c.settleThrows === 'sync') throw new Error('settle sync failed');
      },
    },
    {
      async after() {
        await Promise.resolve();
        log.push('after async');
        if (c.afterThrows === 'async') throw new Error('after async failed');
      },
    },
  ];
}

async function run(kind: 'runner' | 'nested', c: Case): Promise<{ log: string[]; outcome: string }> {
  const log: string[] = [];
  const hooks = hooksFor(log, c);
  const route = async () => {
    log.push('route');
    if (c.routeThrows) throw new Error('route failed');
  };
  const middleware = kind === 'runner' ? [runEngineHooks(hooks) as Middleware, route] : [...hooks.map(asMiddleware), route];
  try {
    await chain(middleware)({} as KoaContextWithOIDC);
    return { log, outcome: 'answered' };
  } catch (error) {
    return { log, outcome: `threw: ${(error as Error).message}` };
  }
}

const CASES: Case[] = [];
for (const routeThrows of [false, true])
  for (const afterThrows of [undefined, 'outer', 'recovering', 'async'])
    for (const recovers of [false, true]) for (const settleThrows of [undefined, 'async', 'sync'] as const) CASES.push({ routeThrows, afterThrows, recovers, settleThrows });

describe('engine hooks run from one middleware', () => {
  it('run before, the route, then after and settle from the innermost hook out', async () => {
    const { log, outcome } = await run('runner', { routeThrows: false, recovers: false });
    expect(outcome).toBe('answered');
    expect(log).toEqual(['before outer', 'before settling', 'route', 'after async', 'settle sync', 'settle', 'after recovering', 'after outer']);
  });

  it('skip the afters an error passes, let a hook answer instead, and settle either way', async () => {
    const { log, outcome } = await run('runner', { routeThrows: true, recovers: true });
    expect(outcome).toBe('answered');
    expect(log).toEqual(['before outer', 'before settling', 'route', 'settle sync', 'settle', 'recover route failed', 'after outer']);
  });

  it.each(CASES)('behave as nested middleware: %o', async (c) => {
    expect(await run('runner', c)).toEqual(await run('nested', c));
  });
});
