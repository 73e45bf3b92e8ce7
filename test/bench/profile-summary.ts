// Summarises a V8 CPU profile (node --cpu-prof, e.g. from `npm run bench -- --profile dir`):
// where the samples fell by package or source folder, and the functions with the most self time.
//   npx tsx test/bench/profile-summary.ts <file.cpuprofile> [top] [skip-seconds]
// skip-seconds leaves out the first seconds of the profile (start-up and module loading).
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const ProfileSchema = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
      hitCount: z.number().default(0),
      children: z.array(z.number()).optional(),
    }),
  ),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});

const [file, topArg, skipArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx test/bench/profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const profile = ProfileSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
const top = Number(topArg ?? 30);
const skipMicros = Number(skipArg ?? 0) * 1e6;
// Hits per node from the samples after the skipped start (hitCount covers the whole profile).
const hits = new Map<number, number>();
let at = profile.startTime;
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0;
  if (at - profile.startTime >= skipMicros) hits.set(id, (hits.get(id) ?? 0) + 1);
});
for (const node of profile.nodes) node.hitCount = hits.get(node.id) ?? 0;
const totalHits = profile.nodes.reduce((sum, n) => sum + n.hitCount, 0);
const seconds = (profile.endTime - profile.startTime - skipMicros) / 1e6;

/** node_modules/<package>, src/<folder>, or what V8 calls it ((garbage collector), (idle), ...). */
function area(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1] as string;
  const own = /\/work\/[^/]+\/((?:src|test)\/[^/]+)/.exec(url) ?? /\/(src\/[^/]+|test\/[^/]+)/.exec(url);
  if (own) return own[1] as string;
  if (url.startsWith('node:')) return 'node:internal';
  return url.replace(/^file:\/\//, '');
}

const byArea = new Map<string, number>();
const byFunction = new Map<string, number>();
for (const node of profile.nodes) {
  if (!node.hitCount) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = area(url, functionName);
  byArea.set(where, (byArea.get(where) ?? 0) + node.hitCount);
  const key = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
}

const pct = (hits: number) => `${((100 * hits) / totalHits).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${seconds.toFixed(1)} s, ${totalHits} samples`);
console.log('\nself time by package / source folder');
for (const [name, hits] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(hits)}  ${name}`);
console.log('\nfunctions by self time');
for (const [name, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(hits)}  ${name}`);
