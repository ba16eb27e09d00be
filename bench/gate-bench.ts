/**
 * Decision latency of the gate with 10, 1 000 and 10 000 rules, for a path target and for a
 * 200-character compound command (parsing included). Rules are indexed, so the 10 000-rule
 * figures should stay close to the 10-rule ones.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGate } from '../src/gate/gate.js';
import { compilePolicy } from '../src/gate/policy.js';
import type { GateRequest } from '../src/gate/types.js';
import { createFsPathResolver } from '../src/platform/fs-path-resolver.js';
import { percentile, type BenchResult } from './stats.js';

const COMPOUND =
  'git status --short && git diff --stat HEAD~1 | head -n 20; npm test -- --run test/gate && git log --oneline -n 5 2>/dev/null | grep -v wip; ls -la src/gate && make -j2 build && echo "done: all green"';

/** Generates `count` rules in the shape real hosts have: mostly anchored path and program rules. */
function rulesFor(count: number, base: string): { allow: string[]; deny: string[]; ask: string[] } {
  const allow = [`read_file(${base}/app7/**)`, 'execute_command(git *)', 'execute_command(npm test *)', 'execute_command(head *)', 'execute_command(grep *)', 'execute_command(ls *)', 'execute_command(make *)', 'execute_command(echo *)'];
  const deny = ['execute_command(git push --force *)', `read_file(${base}/app7/secrets/**)`];
  const ask: string[] = [];
  for (let i = 0; allow.length + deny.length + ask.length < count; i++) {
    switch (i % 6) {
      case 0:
        allow.push(`read_file(${base}/svc${i}/**)`);
        break;
      case 1:
        deny.push(`read_file(${base}/svc${i}/private/*.key)`);
        break;
      case 2:
        allow.push(`execute_command(tool${i} *)`);
        break;
      case 3:
        deny.push(`execute_command(git branch -D feature-${i})`);
        break;
      case 4:
        ask.push(`write_file(${base}/svc${i}/**)`);
        break;
      default:
        allow.push(`execute_command(npm run task-${i} *)`);
    }
  }
  return { allow, deny, ask };
}

/** Times `fn` per call, in microseconds, after a warm-up. */
function timeCalls(iterations: number, fn: () => void): number[] {
  for (let i = 0; i < Math.min(2000, iterations); i++) fn();
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return samples;
}

/** Runs the gate benchmark; one result per target kind and rule count, then the ratios. */
export async function benchGate(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cmdop-bench-gate-'));
  try {
    const base = join(root, 'srv');
    const file = join(base, 'app7', 'src', 'components', 'button.tsx');
    mkdirSync(join(base, 'app7', 'src', 'components'), { recursive: true });
    writeFileSync(file, 'export {};\n');
    const gate = await createGate({ home: root, cmdopHome: join(root, '.cmdop'), resolver: createFsPathResolver() });
    const requests: Record<string, GateRequest> = {
      path: { tool: 'read_file', target: file },
      compound_command: { tool: 'execute_command', target: COMPOUND, cwd: root },
    };
    const results: BenchResult[] = [];
    const p50s = new Map<string, number>();
    for (const count of [10, 1000, 10_000]) {
      const compileStart = process.hrtime.bigint();
      const policy = compilePolicy({ mode: 'default', enabled: true, rules: rulesFor(count, base), home: root });
      const compileMs = Number(process.hrtime.bigint() - compileStart) / 1e6;
      for (const [target, request] of Object.entries(requests)) {
        const expected = gate.evaluate(request, policy);
        if (expected.decision !== 'allow') throw new Error(`benchmark setup: ${target} was not allowed: ${expected.reason}`);
        const samples = timeCalls(20_000, () => gate.evaluate(request, policy));
        const p50 = percentile(samples, 0.5);
        p50s.set(`${target}:${count}`, p50);
        results.push({ name: 'gate.decision', target, rules: count, target_chars: request.target.length, iterations: samples.length, p50_us: round(p50), p99_us: round(percentile(samples, 0.99)), compile_ms: round(compileMs) });
      }
    }
    for (const target of Object.keys(requests)) {
      const small = p50s.get(`${target}:10`) ?? NaN;
      const large = p50s.get(`${target}:10000`) ?? NaN;
      results.push({ name: 'gate.scaling', target, p50_ratio_10000_vs_10: round(large / small), goal: 3 });
    }
    return results;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
