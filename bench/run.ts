/**
 * `npm run bench`: runs every benchmark and prints one JSON object per line. Figures are
 * meant to be read as ratios within one run; absolute times vary with the machine.
 * `node dist/bench/run.js mesh gate` runs only the benchmarks named.
 */
import { benchAudit } from './audit-bench.js';
import { benchAuth } from './auth-bench.js';
import { benchGate } from './gate-bench.js';
import { benchMesh } from './mesh-bench.js';

const started = Date.now();
const print = (value: object): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};
const BENCHES: Readonly<Record<string, () => Promise<readonly object[]>>> = { gate: benchGate, audit: benchAudit, mesh: benchMesh, auth: benchAuth };
const chosen = process.argv.slice(2);
const unknown = chosen.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}\n`);
  process.exit(2);
}
print({ name: 'bench.start', node: process.version, platform: `${process.platform}-${process.arch}`, ts: new Date().toISOString() });
for (const [name, bench] of Object.entries(BENCHES)) {
  if (chosen.length > 0 && !chosen.includes(name)) continue;
  for (const result of await bench()) print(result);
}
print({ name: 'bench.end', seconds: Math.round((Date.now() - started) / 100) / 10 });
