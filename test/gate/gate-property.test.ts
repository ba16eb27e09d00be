import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, type Gate } from '../../src/gate/gate.js';
import { compilePolicy } from '../../src/gate/policy.js';
import { createFsPathResolver } from '../../src/platform/fs-path-resolver.js';

let root: string;
let gate: Gate;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cmdop-prop-'));
  gate = await createGate({ home: root, cmdopHome: join(root, '.cmdop'), resolver: createFsPathResolver() });
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const programs = ['git', 'ls', 'npm', 'echo', 'grep', 'make'];
const wildcardAllows = [...programs.map((p) => `execute_command(${p} *)`), 'execute_command(*)', 'execute_command(!rm *)'];
// Words may contain `=` but not start with it: tree-sitter-bash cannot parse `git ==;`, and an
// unparseable line is (rightly) never allowed, which the last property would take for a bug.
const word = fc.stringMatching(/^[a-zA-Z0-9_.,+-][a-zA-Z0-9_.,=+-]{0,7}$/);
const anyWord = fc.stringMatching(/^[a-zA-Z0-9_.,=+-]{1,8}$/);
const simple = fc.tuple(fc.constantFrom(...programs), fc.array(word, { maxLength: 4 })).map(([p, args]) => [p, ...args].join(' '));
const separator = fc.constantFrom('; ', ' && ', ' || ', ' | ', '\n', ' ;', '&&', ';;'.slice(0, 1));
const hidden = fc.constantFrom('$(id)', '`id`', '<(id)', '>(id)', '$HOME', '${HOME}', '$((1+2))', "$'\\x41'", '$(rm -rf ~)', '"$(id)"', '"${X:-y}"', '$@', '$1');

function policy(extra: { deny?: string[] } = {}): ReturnType<typeof compilePolicy> {
  return compilePolicy({ mode: 'default', enabled: true, rules: { allow: wildcardAllows, deny: extra.deny ?? [], ask: [] }, home: root });
}

describe('matcher properties', () => {
  it('a line with a substitution or expansion anywhere is never allowed by wildcard rules', () => {
    const p = policy();
    fc.assert(
      fc.property(fc.array(simple, { minLength: 1, maxLength: 4 }), fc.array(separator, { minLength: 4, maxLength: 4 }), hidden, fc.nat(), (commands, seps, sub, at) => {
        const parts = [...commands];
        const index = at % parts.length;
        parts[index] = `${parts[index] as string} ${sub}`;
        const line = parts.map((c, i) => (i === 0 ? c : `${seps[i - 1] as string}${c}`)).join('');
        const d = gate.evaluate({ tool: 'execute_command', target: line }, p);
        expect(d.decision, line).not.toBe('allow');
      }),
      { numRuns: 400 },
    );
  });

  it('a chained denied command is denied wherever it stands and however it is joined', () => {
    const p = policy({ deny: ['execute_command(rm *)'] });
    const denied = fc.tuple(fc.constantFrom('rm', '/bin/rm', '/usr/bin/rm', "'rm'", '"rm"', 'r\\m', 'sudo rm', 'timeout 3 rm', 'env A=1 rm', 'FOO=1 rm'), fc.array(anyWord, { maxLength: 3 })).map(([p, a]) => [p, ...a].join(' '));
    // Commands around the denied one may hold words bash parses but tree-sitter does not (`==`).
    const around = fc.tuple(fc.constantFrom(...programs), fc.array(anyWord, { maxLength: 4 })).map(([p, args]) => [p, ...args].join(' '));
    fc.assert(
      fc.property(fc.array(around, { minLength: 0, maxLength: 3 }), denied, fc.nat(), fc.array(separator, { minLength: 4, maxLength: 4 }), fc.boolean(), (commands, bad, at, seps, wrap) => {
        const parts = [...commands];
        const inner = wrap ? `echo $(${bad})` : bad;
        parts.splice(at % (parts.length + 1), 0, inner);
        const line = parts.map((c, i) => (i === 0 ? c : `${seps[i - 1] as string}${c}`)).join('');
        const d = gate.evaluate({ tool: 'execute_command', target: line }, p);
        expect(d.decision, line).toBe('deny');
      }),
      { numRuns: 400 },
    );
  });

  it('lines of allowed commands joined by list operators stay allowed', () => {
    const p = policy();
    fc.assert(
      fc.property(fc.array(simple, { minLength: 1, maxLength: 5 }), fc.array(fc.constantFrom('; ', ' && ', ' || ', ' | ', '\n'), { minLength: 5, maxLength: 5 }), (commands, seps) => {
        const line = commands.map((c, i) => (i === 0 ? c : `${seps[i - 1] as string}${c}`)).join('');
        expect(gate.evaluate({ tool: 'execute_command', target: line }, p).decision, line).toBe('allow');
      }),
      { numRuns: 200 },
    );
  });
});
