import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCmdop, tempHome } from '../helpers/run-cmdop.js';

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(() => {
  cleanup();
});

const permissionsFile = (): string => join(home, 'permissions.yaml');

describe('cmdop permissions allow/deny/ask/revoke/list', () => {
  it('adds rules, writes permissions.yaml 0600, lists them and revokes them', async () => {
    expect((await runCmdop(['permissions', 'allow', 'execute_command(git *)', '--reason', 'trusted repo'], { home })).code).toBe(0);
    expect((await runCmdop(['permissions', 'deny', 'execute_command(rm *)'], { home })).code).toBe(0);
    expect((await runCmdop(['permissions', 'ask', 'write_file'], { home })).code).toBe(0);
    expect(statSync(permissionsFile()).mode & 0o777).toBe(0o600);
    const listed = await runCmdop(['permissions', 'list', '--json'], { home });
    expect(listed.code).toBe(0);
    const result = JSON.parse(listed.stdout) as { mode: string; rules: { rule: string; effect: string; reason: string | null; rule_id: string }[] };
    expect(result.mode).toBe('default');
    expect(result.rules.map((r) => [r.effect, r.rule])).toEqual([
      ['allow', 'execute_command(git *)'],
      ['deny', 'execute_command(rm *)'],
      ['ask', 'write_file'],
    ]);
    expect(result.rules[0]?.reason).toBe('trusted repo');
    expect(result.rules[0]?.rule_id).toMatch(/^[0-9a-f]{64}$/);
    const revoked = await runCmdop(['permissions', 'revoke', 'execute_command(git *)'], { home });
    expect(revoked.code).toBe(0);
    expect(readFileSync(permissionsFile(), 'utf8')).not.toContain('git *');
  });

  it('refuses a malformed rule with exit 2, a pointed message, and no change', async () => {
    await runCmdop(['permissions', 'allow', 'read_file'], { home });
    const before = readFileSync(permissionsFile(), 'utf8');
    const run = await runCmdop(['permissions', 'allow', 'execute_command(git *'], { home });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('missing ")"');
    expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(readFileSync(permissionsFile(), 'utf8')).toBe(before);
  });

  it('reports a bad rule as JSON with --json', async () => {
    const run = await runCmdop(['permissions', 'deny', 'nope(x)', '--json'], { home });
    expect(run.code).toBe(2);
    const out = JSON.parse(run.stdout) as { error: { code: string; message: string } };
    expect(out.error.code).toBe('invalid_input');
    expect(out.error.message).toContain('unknown tool "nope"');
  });

  it('revoking a rule that is not there exits 4', async () => {
    const run = await runCmdop(['permissions', 'revoke', 'execute_command(ls *)'], { home });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('is not in allow, deny or ask');
  });

  it('sets and shows the mode; an unknown mode exits 2', async () => {
    expect((await runCmdop(['permissions', 'mode', 'strict'], { home })).code).toBe(0);
    expect((await runCmdop(['permissions', 'mode'], { home })).stdout.trim()).toBe('strict');
    const bad = await runCmdop(['permissions', 'mode', 'lenient'], { home });
    expect(bad.code).toBe(2);
    expect((await runCmdop(['permissions', 'mode', '--json'], { home })).stdout).toContain('"mode": "strict"');
  });

  it('two allow processes at the same moment both land', async () => {
    const rules = Array.from({ length: 6 }, (_, i) => `execute_command(tool${i} *)`);
    const runs = await Promise.all(rules.map((rule) => runCmdop(['permissions', 'allow', rule], { home })));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const text = readFileSync(permissionsFile(), 'utf8');
    for (const rule of rules) expect(text).toContain(rule);
  });
});

describe('permissions.yaml that cannot be trusted', () => {
  it('refuses a group-readable file with a chmod hint and exit 6', async () => {
    writeFileSync(permissionsFile(), 'version: 1\nmode: bypass\n', { mode: 0o644 });
    chmodSync(permissionsFile(), 0o644);
    const run = await runCmdop(['permissions', 'check', 'execute_command(ls)'], { home });
    expect(run.code).toBe(6);
    expect(run.stderr).toContain('chmod 600');
  });

  it('reports a hand-edited mistake with its line and keeps denying', async () => {
    writeFileSync(permissionsFile(), 'version: 1\nmode: bypass\nallow:\n  - read_file\n  - execute_command(git *\n', { mode: 0o600 });
    const run = await runCmdop(['permissions', 'check', 'execute_command(ls)'], { home });
    expect(run.code).toBe(6);
    expect(run.stderr).toContain('line 5');
    expect(run.stderr).toContain('execute_command(git *');
    expect(run.stdout).not.toContain('ALLOW');
  });
});

describe('cmdop permissions check', () => {
  it('prints the decision and exits 3 on deny', async () => {
    await runCmdop(['permissions', 'allow', 'execute_command(git *)'], { home });
    const allowed = await runCmdop(['permissions', 'check', 'execute_command(git status && git diff)', '--json'], { home });
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ decision: 'allow', source: 'rule', rule: 'execute_command(git *)', tool: 'execute_command' });
    const chained = await runCmdop(['permissions', 'check', 'execute_command(git status; rm -rf ~)'], { home });
    expect(chained.code).toBe(3);
    expect(chained.stdout).toContain('DENY');
    const floor = await runCmdop(['permissions', 'check', 'read_file(~/.ssh/id_rsa)', '--json'], { home });
    expect(floor.code).toBe(3);
    expect(JSON.parse(floor.stdout)).toMatchObject({ decision: 'deny', source: 'floor' });
  });

  it('refuses an unreadable request with exit 2', async () => {
    const run = await runCmdop(['permissions', 'check', 'execute_command git status'], { home });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('tool(target)');
  });

  it('--stdin --json answers every line in order, with an error object for a bad line', async () => {
    const input = [
      JSON.stringify({ tool: 'read_file', target: '/srv/app/x' }),
      'not json',
      JSON.stringify({ tool: 'execute_command', target: 'rm -rf /' }),
      JSON.stringify({ tool: 'teleport', target: 'x' }),
      JSON.stringify({ tool: 'connect', operation: 'exec', target: 'prod-db' }),
    ].join('\n');
    const run = await runCmdop(['permissions', 'check', '--stdin', '--json'], { home, stdin: `${input}\n` });
    expect(run.code).toBe(2);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({ decision: 'allow', source: 'mode' });
    expect(lines[1]).toMatchObject({ error: { line: 2, code: 'invalid_input' } });
    expect(lines[2]).toMatchObject({ decision: 'deny', source: 'floor' });
    expect(lines[3]).toMatchObject({ error: { line: 4 } });
    expect(lines[4]).toMatchObject({ decision: 'ask', source: 'mode', operation: 'exec' });
  });

  it('--from this host shows self-bypass; self_bypass false gates it', async () => {
    await runCmdop(['permissions', 'mode', 'strict'], { home });
    const { hostname } = await import('node:os');
    const self = await runCmdop(['permissions', 'check', 'execute_command(ls)', '--from', hostname(), '--json'], { home });
    expect(JSON.parse(self.stdout)).toMatchObject({ decision: 'allow', source: 'self' });
    await runCmdop(['config', 'set', 'permissions.self_bypass', 'false'], { home });
    const gated = await runCmdop(['permissions', 'check', 'execute_command(ls)', '--from', hostname(), '--json'], { home });
    expect(JSON.parse(gated.stdout)).toMatchObject({ decision: 'deny', source: 'mode' });
  });
});

describe('cmdop config', () => {
  it('permissions.enabled false lifts rules but not the floor', async () => {
    await runCmdop(['permissions', 'mode', 'strict'], { home });
    expect((await runCmdop(['config', 'set', 'permissions.enabled', 'false'], { home })).code).toBe(0);
    expect((await runCmdop(['config', 'get', 'permissions.enabled'], { home })).stdout.trim()).toBe('false');
    expect((await runCmdop(['permissions', 'check', 'write_file(/tmp/x)'], { home })).code).toBe(0);
    expect((await runCmdop(['permissions', 'check', 'write_file(/etc/passwd)'], { home })).code).toBe(3);
  });

  it('refuses an unknown key or a bad value with exit 2 and no change', async () => {
    const key = await runCmdop(['config', 'set', 'permissions.floor', 'false'], { home });
    expect(key.code).toBe(2);
    expect(key.stderr).toContain('permissions.enabled');
    const value = await runCmdop(['config', 'set', 'permissions.enabled', 'maybe'], { home });
    expect(value.code).toBe(2);
    expect((await runCmdop(['config', 'get', 'permissions.enabled', '--json'], { home })).stdout).toContain('true');
  });
});

describe('cmdop permissions test and the examples', () => {
  it.each(['developer-laptop', 'production-host', 'ci-runner'])('examples/%s.permissions.yaml passes its own tests', async (name) => {
    copyFileSync(join(REPO_ROOT, 'examples', `${name}.permissions.yaml`), permissionsFile());
    chmodSync(permissionsFile(), 0o600);
    const run = await runCmdop(['permissions', 'test', '--json'], { home });
    const out = JSON.parse(run.stdout) as { passed: number; failed: number; results: unknown[] };
    expect(out.failed, JSON.stringify(out.results, null, 2)).toBe(0);
    expect(out.passed).toBeGreaterThan(5);
    expect(run.code).toBe(0);
  });

  it('refuses a change that would break a test, naming it, and leaves the file alone', async () => {
    copyFileSync(join(REPO_ROOT, 'examples', 'developer-laptop.permissions.yaml'), permissionsFile());
    chmodSync(permissionsFile(), 0o600);
    const before = readFileSync(permissionsFile(), 'utf8');
    const run = await runCmdop(['permissions', 'revoke', 'execute_command(git push --force *)'], { home });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('execute_command(git push --force origin main) expects deny, would be ask');
    expect(readFileSync(permissionsFile(), 'utf8')).toBe(before);
    const mode = await runCmdop(['permissions', 'mode', 'bypass'], { home });
    expect(mode.code).toBe(2);
    expect(readFileSync(permissionsFile(), 'utf8')).toBe(before);
  });

  it('a failing test exits 6 and says which', async () => {
    writeFileSync(permissionsFile(), 'version: 1\nmode: default\ntests:\n  - request: write_file(/tmp/x)\n    expect: allow\n', { mode: 0o600 });
    const run = await runCmdop(['permissions', 'test'], { home });
    expect(run.code).toBe(6);
    expect(run.stdout).toContain('FAIL');
    expect(run.stdout).toContain('write_file(/tmp/x) expects allow, got ask');
  });
});

describe('help', () => {
  it.each([['permissions', 'check'], ['permissions', 'allow'], ['permissions', 'audit'], ['config', 'set']])('%s %s --help shows examples', async (...command) => {
    const run = await runCmdop([...command, '--help'], { home });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('EXAMPLES');
    expect(run.stdout).toContain('--json');
  });
});
