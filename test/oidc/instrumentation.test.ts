// The timing of the engine's storage calls (src/oidc/instrumentation.ts): each call is observed
// once, when it settles, whether it answered or failed, and the engine gets the call's own answer
// (its promise, its value, its error) with no wrapper of its own around it.
import type { Adapter } from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import { timeAdapterCalls, type AdapterMethod } from '../../src/oidc/instrumentation.js';

interface Observed {
  model: string;
  method: AdapterMethod;
  seconds: number;
}

function timed(inner: Partial<Adapter>) {
  const observed: Observed[] = [];
  const factory = timeAdapterCalls(() => inner as Adapter, (model, method, seconds) => observed.push({ model, method, seconds }));
  return { adapter: factory('Grant'), observed };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('timed storage calls', () => {
  it('hand the engine the call’s own promise and observe it once it has answered', async () => {
    let answer!: (value: unknown) => void;
    const pending = new Promise((resolve) => (answer = resolve));
    const { adapter, observed } = timed({ find: () => pending as ReturnType<Adapter['find']> });
    const found = adapter.find('grant-1');
    expect(found).toBe(pending);
    await settled();
    expect(observed).toEqual([]);
    answer({ accountId: 'alice' });
    await expect(found).resolves.toEqual({ accountId: 'alice' });
    await settled();
    expect(observed).toEqual([{ model: 'Grant', method: 'find', seconds: expect.any(Number) }]);
    expect(observed[0]?.seconds).toBeGreaterThanOrEqual(0);
  });

  it('pass a failed call’s error on to the engine and observe that call too', async () => {
    const failure = new Error('database gone');
    const { adapter, observed } = timed({ destroy: () => Promise.reject(failure) });
    await expect(adapter.destroy('grant-1')).rejects.toBe(failure);
    await settled();
    expect(observed.map(({ method }) => method)).toEqual(['destroy']);
  });

  it('turn a call that throws before it returns a promise into a rejection, observed', async () => {
    const failure = new Error('refused at once');
    const { adapter, observed } = timed({
      consume: () => {
        throw failure;
      },
    });
    const answer = adapter.consume('code-1');
    expect(answer).toBeInstanceOf(Promise);
    await expect(answer).rejects.toBe(failure);
    expect(observed.map(({ method }) => method)).toEqual(['consume']);
  });

  it('still answer the engine, once, when the observer fails', async () => {
    const factory = timeAdapterCalls(
      () => ({ find: async () => ({ accountId: 'alice' }) }) as unknown as Adapter,
      () => {
        throw new Error('metrics broke');
      },
    );
    const unhandled: unknown[] = [];
    const note = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', note);
    try {
      await expect(factory('Grant').find('grant-1')).resolves.toEqual({ accountId: 'alice' });
      await settled();
      await settled();
    } finally {
      process.off('unhandledRejection', note);
    }
    expect(unhandled).toEqual([]);
  });

  it('accept a plain value from a storage call as its answer, and time it', async () => {
    const { adapter, observed } = timed({ findByUid: (() => undefined) as unknown as Adapter['findByUid'] });
    await expect(adapter.findByUid('uid-1')).resolves.toBeUndefined();
    await settled();
    expect(observed.map(({ method }) => method)).toEqual(['findByUid']);
  });

  it('leave out the methods the adapter does not have', () => {
    const { adapter } = timed({ find: async () => undefined });
    expect(adapter.find).toBeTypeOf('function');
    expect(adapter.upsert).toBeUndefined();
  });
});
