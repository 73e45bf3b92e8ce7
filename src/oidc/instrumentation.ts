// Timing of the engine's storage calls, for the metrics endpoint. The decorator knows nothing of
// Prometheus: it reports (model, method, seconds) to whatever observer the caller hands in.
import type { Adapter } from 'oidc-provider';

export type AdapterObserver = (model: string, method: AdapterMethod, seconds: number) => void;

const ADAPTER_METHODS = ['upsert', 'find', 'findByUserCode', 'findByUid', 'consume', 'destroy', 'revokeByGrantId'] as const;
export type AdapterMethod = (typeof ADAPTER_METHODS)[number];

function timeAdapter(model: string, inner: Adapter, observe: AdapterObserver): Adapter {
  const timed: Record<string, unknown> = {};
  for (const method of ADAPTER_METHODS) {
    const call = inner[method] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (!call) continue;
    // The call's own promise goes back to the engine, and the time is taken when it settles: an
    // async wrapper would add two promises (and, with the engine's AsyncLocalStorage, two
    // async-hook calls) to every storage call. (Promise.resolve hands a promise back as it is.)
    // A failing observer loses its measurement, never the call's answer: nothing awaits the
    // promise that runs it, so its error would otherwise end the process as unhandled.
    timed[method] = function timedAdapterCall(...args: unknown[]) {
      const started = process.hrtime.bigint();
      const done = () => {
        try {
          observe(model, method, Number(process.hrtime.bigint() - started) / 1e9);
        } catch {
          // the measurement is lost; the call's answer is not
        }
      };
      let answer: Promise<unknown>;
      try {
        answer = Promise.resolve(call.apply(inner, args));
      } catch (error) {
        done();
        return Promise.reject(error);
      }
      answer.then(done, done);
      return answer;
    };
  }
  return timed as unknown as Adapter;
}

/**
 * Wraps an adapter factory so every call is timed. Returns an arrow function, like the factory:
 * the engine calls a non-constructable adapter as a factory instead of with `new`.
 */
export function timeAdapterCalls(factory: (model: string) => Adapter, observe: AdapterObserver): (model: string) => Adapter {
  const adapters = new Map<string, Adapter>();
  return (model: string) => {
    let adapter = adapters.get(model);
    if (!adapter) {
      adapter = timeAdapter(model, factory(model), observe);
      adapters.set(model, adapter);
    }
    return adapter;
  };
}
