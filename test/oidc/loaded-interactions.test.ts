// An interaction route's write reuses the engine's interaction its load found in the same request
// (src/oidc/loaded-interactions.ts): once, for that request only; otherwise the engine looks it up.
// The flows through the real engine are in test/http (sign-in, second factor, federation).
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import { createLoadedInteractions } from '../../src/oidc/loaded-interactions.js';

function fakeEngine() {
  const saved: Array<{ uid: string; result: unknown; ttl: number }> = [];
  const engineWrites: unknown[] = [];
  let lookups = 0;
  const instance = (uid: string) => ({
    uid,
    exp: Math.floor(Date.now() / 1000) + 600,
    returnTo: `https://issuer.example/authorize/${uid}`,
    result: { earlier: true } as unknown,
    lastSubmission: { login: { accountId: 'acc-1' } },
    async save(this: { uid: string; result: unknown }, ttl: number) {
      saved.push({ uid: this.uid, result: this.result, ttl });
      return this.uid;
    },
  });
  const provider = {
    async interactionDetails() {
      lookups++;
      return instance(`uid-${lookups}`);
    },
    async interactionResult(_req: unknown, _res: unknown, result: unknown, options: unknown) {
      engineWrites.push({ result, options });
      return 'https://issuer.example/authorize/by-engine';
    },
  } as unknown as Provider;
  return { provider, saved, engineWrites, lookups: () => lookups };
}

const request = () => {
  const req = new IncomingMessage(new Socket());
  return { req, res: new ServerResponse(req) };
};

describe('the interaction a route loaded, written in the same request', () => {
  it('replaces its result without a second lookup, until it expires, and sends the browser on', async () => {
    const engine = fakeEngine();
    const interactions = createLoadedInteractions(engine.provider);
    const { req, res } = request();
    await interactions.load(req, res);
    await interactions.finish(req, res, { login: { accountId: 'acc-1' } });
    expect(engine.lookups()).toBe(1);
    expect(engine.engineWrites).toEqual([]);
    expect(engine.saved).toEqual([{ uid: 'uid-1', result: { login: { accountId: 'acc-1' } }, ttl: expect.any(Number) }]);
    expect(engine.saved[0]!.ttl).toBeGreaterThan(598);
    expect(engine.saved[0]!.ttl).toBeLessThanOrEqual(600);
    expect(res.statusCode).toBe(303);
    expect(res.getHeader('location')).toBe('https://issuer.example/authorize/uid-1');
  });

  it("merges with the last submission when asked, as the engine does, an error excepted", async () => {
    const engine = fakeEngine();
    const interactions = createLoadedInteractions(engine.provider);
    const consent = request();
    await interactions.load(consent.req, consent.res);
    await interactions.finish(consent.req, consent.res, { consent: { grantId: 'g-1' } }, { merge: true });
    const refusal = request();
    await interactions.load(refusal.req, refusal.res);
    await interactions.finish(refusal.req, refusal.res, { error: 'access_denied' }, { merge: true });
    expect(engine.saved.map((write) => write.result)).toEqual([{ login: { accountId: 'acc-1' }, consent: { grantId: 'g-1' } }, { error: 'access_denied' }]);
    expect(engine.engineWrites).toEqual([]);
  });

  it('hands it out once: a second write in the request goes through the engine, as does a request that loaded nothing', async () => {
    const engine = fakeEngine();
    const interactions = createLoadedInteractions(engine.provider);
    const first = request();
    await interactions.load(first.req, first.res);
    expect(await interactions.saveResult(first.req, first.res, { gatehouse_mfa: { accountId: 'acc-1', stage: 'code' } })).toBe('https://issuer.example/authorize/uid-1');
    expect(await interactions.saveResult(first.req, first.res, {})).toBe('https://issuer.example/authorize/by-engine');

    const other = request();
    await interactions.saveResult(other.req, other.res, { login: { accountId: 'acc-2' } });
    expect(engine.saved).toHaveLength(1);
    expect(engine.engineWrites).toEqual([
      { result: {}, options: { mergeWithLastSubmission: false } },
      { result: { login: { accountId: 'acc-2' } }, options: { mergeWithLastSubmission: false } },
    ]);
  });
});
