import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_TEXT_MAX,
  auditRecordSchema,
  createAuditRecord,
  createOutcomeRecord,
  digestInput,
  redactTarget,
  ruleId,
} from '../../src/audit/audit-record.js';
import type { AuditDecisionInit } from '../../src/audit/audit-record.js';

const R = '[REDACTED]';

describe('redactTarget', () => {
  // [what, input, expected output]
  const cases: readonly (readonly [string, string, string])[] = [
    ['--password=x', 'mysql-backup --password=hunter2 --db prod', `mysql-backup --password=${R} --db prod`],
    ['--password "quoted words"', 'tool --password "two words" -v', `tool --password ${R} -v`],
    ['--token x', 'gh auth login --token abc123def', `gh auth login --token ${R}`],
    ['--api-key=x', 'client --api-key=k-123', `client --api-key=${R}`],
    ['--client-secret x', 'oauth --client-secret s3cr3t', `oauth --client-secret ${R}`],
    ['--oauth2-bearer x', 'curl --oauth2-bearer abcdefgh12 https://a.example', `curl --oauth2-bearer ${R} https://a.example`],
    ['flag followed by a flag is not a value', 'psql --password --host db', 'psql --password --host db'],
    ['whole quoted flag', `run '--password=two words' next`, `run '--password=${R}' next`],
    ['PASSWORD=', 'PASSWORD=hunter2 ./deploy.sh', `PASSWORD=${R} ./deploy.sh`],
    ['PGPASSWORD=', 'PGPASSWORD=pw psql -h db', `PGPASSWORD=${R} psql -h db`],
    ['*_TOKEN=', 'GITHUB_TOKEN=abc make release', `GITHUB_TOKEN=${R} make release`],
    ['*_SECRET=', 'export APP_SECRET="a b c"; run', `export APP_SECRET=${R}; run`],
    ['*_KEY=', 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI aws s3 ls', `AWS_SECRET_ACCESS_KEY=${R} aws s3 ls`],
    ['docker -e "X_TOKEN=v w"', 'docker run -e "X_TOKEN=v w" img', `docker run -e "X_TOKEN=${R}" img`],
    ['lower-case query parameter', 'curl "https://api.example/x?token=abc&page=2"', `curl "https://api.example/x?token=${R}&page=2"`],
    ['Authorization: Bearer', `curl -H 'Authorization: Bearer eyabc.def' https://a.example`, `curl -H 'Authorization: Bearer ${R}' https://a.example`],
    ['Authorization: Basic', 'curl -H "authorization: basic dXNlcjpwYXNz" x', `curl -H "authorization: basic ${R}" x`],
    ['Cookie header', `curl -H 'Cookie: session=abc' x`, `curl -H 'Cookie: ${R}' x`],
    ['X-Api-Key header', 'curl -H "X-Api-Key: 12345" x', `curl -H "X-Api-Key: ${R}" x`],
    ['bare Bearer token', 'echo Bearer abcdefgh123', `echo Bearer ${R}`],
    ['URL user:pass@', 'git clone https://bob:s3cret@git.example/repo.git', `git clone https://bob:${R}@git.example/repo.git`],
    ['URL password with @', 'psql postgres://app:p@ss@db:5432/x', `psql postgres://app:${R}@db:5432/x`],
    ['curl -u user:pass', 'curl -u alice:pw123 https://a.example', `curl -u alice:${R} https://a.example`],
    ['curl -u quoted', `curl -u 'alice:pw 123' https://a.example`, `curl -u 'alice:${R}' https://a.example`],
    ['sshpass -p', 'sshpass -p hunter2 ssh host', `sshpass -p ${R} ssh host`],
    ['mysql -pPASS', 'mysql -u root -phunter2 prod', `mysql -u root -p${R} prod`],
    ['sk- token', 'export X=sk-abcdefghijklmnopqrstuvwxyz', `export X=${R}`],
    ['sk-ant- token', 'call sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv', `call ${R}`],
    ['ghp_ token', 'git push https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r', `git push https://${R}@github.com/o/r`],
    ['github_pat_ token', 'use github_pat_11ABCDEFG0123456789_abcdefghijklmnop', `use ${R}`],
    ['glpat- token', 'use glpat-abcdefghijklmnopqrst', `use ${R}`],
    ['Slack token', 'notify xoxb-1234567890-abcdefghij', `notify ${R}`],
    ['AWS access key id', 'aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE', `aws configure set aws_access_key_id ${R}`],
    ['JWT', 'curl -d eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-x x', `curl -d ${R} x`],
    ['PEM private key', 'echo "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----" > k', `echo "${R}" > k`],
    ['JSON password field', '{"user":"bob","password":"hunter2"}', `{"user":"bob","password":"${R}"}`],
    ['inside sh -c "..."', 'sh -c "deploy --token abc123"', `sh -c "deploy --token ${R}"`],
    ['cmdop share link', 'cmdop connect exec beta --share cmdop-share.eyJ2IjoxfQ.Q2x1ZV9zZWNyZXRfdmFsdWVfMzJfYnl0ZXNfbG9uZw -- ls', `cmdop connect exec beta --share cmdop-share.${R} -- ls`],
    ['cmdop API key', "printf %s 'cmdop-key.eyJ2IjoxfQ.c2VjcmV0X3BhcnQ' | cmdop connect key set -", `printf %s 'cmdop-key.${R}' | cmdop connect key set -`],
    ['cmdop API key in the environment', 'CMDOP_API_KEY=cmdop-key.eyJ2IjoxfQ.c2VjcmV0 cmdop whoami', `CMDOP_API_KEY=${R} cmdop whoami`],
    ['cmdop join token', 'cmdop join cmdop-join.eyJ2IjoxfQ.c2VjcmV0X3BhcnQ --server 10.0.0.1:8470', `cmdop join cmdop-join.${R} --server 10.0.0.1:8470`],
  ];

  it.each(cases)('redacts %s', (_what, input, expected) => {
    expect(redactTarget(input)).toBe(expected);
  });

  it.each([
    'git commit -m "fix a/b" --author="Bob <b@example.com>"',
    'ls -la /srv/app',
    'sort --key 2 data.txt',
    'ssh://git@github.com/o/r.git',
    '/home/bob/.config/app/settings.json',
    'vps-audi',
    'PWD=/tmp ls',
    'echo $HOME && cat README.md | head -n 5',
  ])('leaves ordinary text alone: %s', (text) => {
    expect(redactTarget(text)).toBe(text);
  });

  it('never leaks a secret placed after a secret-bearing name, whatever the secret', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{8,30}$/).map((s) => `Zq9${s}`);
    const template = fc.constantFrom(
      (s: string) => `deploy --password=${s} --verbose`,
      (s: string) => `deploy --password ${s}`,
      (s: string) => `deploy --token "${s}"`,
      (s: string) => `DB_PASSWORD=${s} ./run`,
      (s: string) => `MY_API_KEY='${s}' ./run`,
      (s: string) => `curl -H "Authorization: Bearer ${s}" https://x`,
      (s: string) => `curl https://u:${s}@host/path`,
      (s: string) => `curl -u user:${s} https://x`,
      (s: string) => `bash -c "tool --secret ${s}"`,
    );
    fc.assert(
      fc.property(secret, template, (s, make) => {
        const out = redactTarget(make(s));
        expect(out).not.toContain(s);
        expect(out).toContain(R);
        expect(redactTarget(out)).toBe(out);
      }),
    );
  });
});

describe('createAuditRecord', () => {
  const withoutId: AuditDecisionInit = {
    decision: 'allow',
    tool: 'execute_command',
    target: 'deploy --token abc123',
    mode: 'default',
    source: 'rule',
    rule: 'execute_command(deploy --token abc123)',
    reason: 'matched allow rule execute_command(deploy --token abc123)',
    ask_ms: 0,
    hostname: 'vps-audi',
    user: 'host:vps-audi',
    input: { command: 'deploy --token abc123', cwd: '/srv' },
    now: new Date('2025-01-31T12:00:00.000Z'),
  };
  const init: AuditDecisionInit = { ...withoutId, call_id: 'call-1' };

  it('fills ts, event, rule_id and input_digest, and redacts free text', () => {
    const record = createAuditRecord(init);
    expect(record).toEqual({
      ts: '2025-01-31T12:00:00.000Z',
      event: 'decision',
      call_id: 'call-1',
      decision: 'allow',
      tool: 'execute_command',
      operation: null,
      target: `deploy --token ${R}`,
      mode: 'default',
      source: 'rule',
      rule: `execute_command(deploy --token ${R})`,
      rule_id: createHash('sha256').update('execute_command(deploy --token abc123)').digest('hex'),
      reason: `matched allow rule execute_command(deploy --token ${R})`,
      input_digest: digestInput({ command: 'deploy --token abc123', cwd: '/srv' }),
      ask_ms: 0,
      hostname: 'vps-audi',
      user: 'host:vps-audi',
    });
    expect(JSON.stringify(record)).not.toContain('abc123');
    expect(auditRecordSchema.safeParse(JSON.parse(JSON.stringify(record))).success).toBe(true);
  });

  it('digests the unredacted input, so lines still correlate', () => {
    const a = createAuditRecord(init);
    const b = createAuditRecord({ ...init, input: { command: 'deploy --token OTHER', cwd: '/srv' } });
    expect(a.target).toBe(b.target.replace('OTHER', 'abc123').replace(`--token ${R}`, `--token ${R}`));
    expect(a.input_digest).not.toBe(b.input_digest);
    expect(a.input_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('digests canonically: key order does not matter', () => {
    expect(digestInput({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(digestInput({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(digestInput({ a: 1 })).not.toBe(digestInput({ a: 2 }));
  });

  it('never stores file contents, only their digest', () => {
    const content = 'PRIVATE FILE CONTENT that must not leak';
    const record = createAuditRecord({ ...init, tool: 'write_file', target: '/srv/app/notes.txt', input: { path: '/srv/app/notes.txt', content } });
    expect(JSON.stringify(record)).not.toContain('PRIVATE FILE CONTENT');
    expect(record.input_digest).toBe(digestInput({ path: '/srv/app/notes.txt', content }));
  });

  it('generates a call id and null rule fields when absent', () => {
    const record = createAuditRecord({ ...withoutId, rule: null, source: 'mode' });
    expect(record.call_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(record.rule).toBeNull();
    expect(record.rule_id).toBeNull();
  });

  it('rejects a negative ask time', () => {
    expect(() => createAuditRecord({ ...init, ask_ms: -1 })).toThrow(/ask_ms/);
  });

  it('makes an outcome line with the same call id and a redacted error', () => {
    const decision = createAuditRecord(init);
    const outcome = createOutcomeRecord(
      decision,
      { status: 'failed', exit_code: 2, duration_ms: 15, truncated: false, error: 'login failed for --password=hunter2' },
      new Date('2025-01-31T12:00:01.000Z'),
    );
    expect(outcome.event).toBe('outcome');
    expect(outcome.call_id).toBe(decision.call_id);
    expect(outcome.input_digest).toBe(decision.input_digest);
    expect(outcome.ts).toBe('2025-01-31T12:00:01.000Z');
    expect(outcome.outcome).toEqual({ status: 'failed', exit_code: 2, duration_ms: 15, truncated: false, error: `login failed for --password=${R}` });
    expect(auditRecordSchema.safeParse(JSON.parse(JSON.stringify(outcome))).success).toBe(true);
  });

  it('ruleId is the sha256 hex of the rule text', () => {
    expect(ruleId('read_file')).toBe(createHash('sha256').update('read_file').digest('hex'));
  });
});

describe('auditRecordSchema', () => {
  it('rejects an outcome line without its outcome, and unknown decisions', () => {
    const record = createAuditRecord({
      decision: 'deny',
      tool: 'read_file',
      target: '/etc/shadow',
      mode: 'strict',
      source: 'floor',
      reason: 'floor',
      hostname: 'h',
      user: 'u',
      input: { path: '/etc/shadow' },
    });
    expect(auditRecordSchema.safeParse({ ...record, event: 'outcome' }).success).toBe(false);
    expect(auditRecordSchema.safeParse({ ...record, decision: 'maybe' }).success).toBe(false);
    expect(auditRecordSchema.safeParse({ ...record, input_digest: 'abc' }).success).toBe(false);
  });
});

describe('record size', () => {
  it('bounds a huge target, redacting before the cut', () => {
    const target = `deploy --token abcdef ${'x'.repeat(100_000)}`;
    const record = createAuditRecord({
      decision: 'allow',
      tool: 'execute_command',
      target,
      mode: 'bypass',
      source: 'mode',
      reason: 'bypass mode',
      hostname: 'h',
      user: 'u',
      input: { command: target },
    });
    expect(record.target.length).toBeLessThan(AUDIT_TEXT_MAX + 100);
    expect(record.target).toMatch(/^deploy --token \[REDACTED\] x+…\[truncated \d+ chars\]$/);
    expect(record.input_digest).toBe(digestInput({ command: target }));
  });
});
