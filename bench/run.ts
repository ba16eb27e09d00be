/**
 * `npm run bench`: runs every benchmark and prints one JSON object per line. Figures are
 * meant to be read as ratios within one run; absolute times vary with the machine.
 */
import { benchAudit } from './audit-bench.js';
import { benchGate } from './gate-bench.js';

const started = Date.now();
const print = (value: object): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};
print({ name: 'bench.start', node: process.version, platform: `${process.platform}-${process.arch}`, ts: new Date().toISOString() });
for (const result of await benchGate()) print(result);
for (const result of await benchAudit()) print(result);
print({ name: 'bench.end', seconds: Math.round((Date.now() - started) / 100) / 10 });
