// What a process started by a test loaded that serving should not need: WebAssembly compiled
// (Prisma's query compiler; Node's fetch's HTTP parser) and Node's fetch itself (undici). A file
// given to `node --require` counts the first and, as the process exits, writes both to
// <dir>/loaded-<pid>.json (README "Performance", round 29).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Loaded {
  webAssembly: number;
  fetch: boolean;
}

export interface LoadedProbe {
  /** NODE_OPTIONS that load the probe (after `base`, e.g. the image's own). */
  nodeOptions(base?: string): string;
  /** What the process `pid` had loaded when it exited, if it exited normally. */
  of(pid: number): Loaded | undefined;
  /** Every process's, by pid. */
  all(): Map<number, Loaded>;
}

export function loadedProbe(dir: string): LoadedProbe {
  const file = join(dir, 'loaded-probe.cjs');
  writeFileSync(
    file,
    `let compiled = 0;
     for (const name of ['compile', 'instantiate', 'compileStreaming', 'instantiateStreaming']) {
       const original = WebAssembly[name];
       WebAssembly[name] = function (...args) { compiled++; return original.apply(this, args); };
     }
     WebAssembly.Module = new Proxy(WebAssembly.Module, { construct(target, args) { compiled++; return new target(...args); } });
     process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'loaded-'))} + process.pid + '.json', JSON.stringify({
       webAssembly: compiled,
       fetch: process.moduleLoadList.some((name) => name.includes('undici')),
     })));`,
  );
  const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Loaded;
  return {
    nodeOptions: (base = '') => `${base} --require=${file}`.trim(),
    of: (pid) => (readdirSync(dir).includes(`loaded-${pid}.json`) ? read(`loaded-${pid}.json`) : undefined),
    all() {
      const written = readdirSync(dir).map((name) => /^loaded-(\d+)\.json$/.exec(name)).filter((match) => match !== null);
      return new Map(written.map((match) => [Number(match[1]), read(match[0])]));
    },
  };
}
