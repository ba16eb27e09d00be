/**
 * A machine password on a real daemon (issue 4 §5): while the machine is locked, the daemon
 * itself refuses what the CLI refuses — a local caller with the token (the SDK, an agent)
 * calling a host, and an answer that adds a rule — so going around the CLI changes nothing.
 * Denying, and allowing one call, stay open to the operator.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectOperator, resolveLocalEndpoint } from '../../src/client/operator-client.js';
import { createClient } from '../../src/index.js';
import { CmdopError } from '../../src/errors.js';
import { makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

const PASSWORD = 'locked host 7391';

let cleanup: () => Promise<void>;
let alpha: TestHost;
let beta: TestHost;

beforeAll(async () => {
  const made = await makeWorkspace(['alpha', 'beta'], { askTimeoutSeconds: 20, ips: ['127.0.0.61', '127.0.0.62'] });
  ({ cleanup } = made);
  [alpha, beta] = made.hosts as [TestHost, TestHost];
  const set = await alpha.run(['password', 'set'], { stdin: `${PASSWORD}\n` });
  if (set.code !== 0) throw new Error(`password set failed: ${set.stderr}`);
}, 60_000);
afterAll(async () => {
  await cleanup();
});

async function refusal(promise: Promise<unknown>): Promise<CmdopError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CmdopError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('a locked machine, through its daemon', () => {
  it('refuses an SDK call to another host, and to itself, until unlocked; nothing runs', async () => {
    const client = createClient({ home: alpha.home });
    const toBeta = await refusal(client.exec('beta', 'echo from-a-locked-alpha'));
    expect(toBeta.code).toBe('denied');
    expect(toBeta.exitCode).toBe(3);
    expect(toBeta.message).toMatch(/locked.*cmdop password unlock/);
    expect((await refusal(client.exec('alpha', 'echo local'))).code).toBe('denied');
    expect(beta.audit().some((l) => l.target === 'echo from-a-locked-alpha')).toBe(false);

    await mustRun(beta, ['permissions', 'allow', 'execute_command(echo from-an-unlocked-alpha)']);
    expect((await alpha.run(['password', 'unlock', '--ttl', '1m'], { stdin: `${PASSWORD}\n` })).code).toBe(0);
    const ran = await client.exec('beta', 'echo from-an-unlocked-alpha');
    expect(ran.result).toMatchObject({ exit_code: 0, stdout: 'from-an-unlocked-alpha\n' });
    expect((await alpha.run(['password', 'lock'])).code).toBe(0);
    expect((await refusal(client.exec('beta', 'echo from-an-unlocked-alpha'))).code).toBe('denied');
  });

  it('takes an allow-once, but not an answer that adds a rule, from the CLI or the operator channel', async () => {
    const operator = await connectOperator(await resolveLocalEndpoint(alpha.home));
    const events = operator.events[Symbol.asyncIterator]();
    try {
      const call = beta.run(['connect', 'exec', 'alpha', '--', 'uname -n']);
      let id: string | undefined;
      while (id === undefined) {
        const next = await events.next();
        if (next.done === true) throw new Error('the operator channel closed before the prompt came');
        if (next.value.type === 'prompt') id = next.value.prompt.id;
      }

      const always = await alpha.run(['permissions', 'answer', id, 'allow', '--scope', 'global']);
      expect(always.code).toBe(3);
      expect(always.stderr).toMatch(/locked/);
      const session = await alpha.run(['permissions', 'answer', id, 'allow', '--scope', 'session']);
      expect(session.code).toBe(3);
      // The operator channel is refused the same way, and says why.
      const overChannel = await refusal(operator.answer({ id, decision: 'allow', scope: 'global' }));
      expect(overChannel.code).toBe('denied');
      expect(overChannel.message).toMatch(/locked/);
      const policy = join(alpha.home, 'permissions.yaml');
      expect(existsSync(policy) ? readFileSync(policy, 'utf8') : '').not.toContain('uname -n');

      // The prompt is still waiting; allowing this one call is the operator's answer, not a rule.
      await mustRun(alpha, ['permissions', 'answer', id, 'allow']);
      const r = await call;
      expect(r.code).toBe(0);
      const rules = await alpha.json<unknown>(['permissions', 'list', '--mode', 'session']);
      expect(JSON.stringify(rules.body)).not.toContain('uname -n');
      expect(alpha.audit().find((l) => l.target === 'uname -n' && l.event === 'decision')).toMatchObject({ decision: 'ask_allowed', hostname: 'beta' });
    } finally {
      operator.close();
    }
  });
});
