/**
 * Three hosts on 127.0.0.2–.4, each with its own CMDOP_HOME and a real daemon started from the
 * built binary: alpha makes the workspace, beta and gamma join with real tokens. Every call
 * below crosses real gRPC with mutual TLS and the receiver's real gate and audit log.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CMDOP_BIN } from '../helpers/run-cmdop.js';
import { eventually, makeHost, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

/**
 * ask_timeout on these hosts: long enough that an operator's two CLI calls (pending, answer)
 * fit in it on a loaded CI machine, short enough to wait out once.
 */
const ASK_TIMEOUT_S = 8;

let hosts: TestHost[];
let cleanup: () => Promise<void>;
let alpha: TestHost;
let beta: TestHost;
let gamma: TestHost;

beforeAll(async () => {
  ({ hosts, cleanup } = await makeWorkspace(['alpha', 'beta', 'gamma'], { askTimeoutSeconds: ASK_TIMEOUT_S }));
  [alpha, beta, gamma] = hosts as [TestHost, TestHost, TestHost];
}, 120_000);

afterAll(async () => {
  await cleanup();
});

interface PeerRow {
  name: string;
  address: string;
  online: boolean;
  source: string;
}

interface ExecJson {
  hostname: string;
  ran: boolean;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  decision: { decision: string; source: string; reason: string; rule?: string } | null;
  error?: { code: string; message: string };
}

describe('joining and the roster', () => {
  it('every host learns every other host and its address, without hand configuration', async () => {
    for (const host of hosts) {
      await eventually(`${host.name} to see all three hosts online`, async () => {
        const { body } = await host.json<{ peers: PeerRow[] }>(['peers', 'list']);
        const online = body.peers.filter((p) => p.online).map((p) => `${p.name}@${p.address}`).sort();
        const expected = hosts.map((h) => `${h.name}@${h.address}`).sort();
        return JSON.stringify(online) === JSON.stringify(expected) ? true : undefined;
      });
    }
  });

  it('status reports the host, its workspace and the peers online', async () => {
    const { code, body } = await beta.json<{ host_name: string; workspace: { name: string; is_ca: boolean }; peers_online: number; listen_address: string; pid: number }>(['agent', 'status']);
    expect(code).toBe(0);
    expect(body.host_name).toBe('beta');
    expect(body.workspace).toMatchObject({ name: 'test', is_ca: false });
    expect(body.listen_address).toBe(beta.address);
    expect(body.pid).toBe(beta.pid());
    await eventually('beta to count two peers online', async () => ((await beta.json<{ peers_online: number }>(['agent', 'status'])).body.peers_online === 2 ? true : undefined));
  });

  it('a used token, a forged token and a taken name are refused, and nothing is written', async () => {
    const invite = await alpha.json<{ token: string }>(['workspace', 'invite', '--ttl', '5m']);
    const root = mkdtempSync(join(tmpdir(), 'cmdop-join-'));
    try {
      const delta = makeHost('delta', '127.0.0.5', root);
      // A name already taken: refused, and the token is not used up.
      const taken = await delta.run(['join', invite.body.token, '--server', alpha.address, '--name', 'beta']);
      expect(taken.code).toBe(3);
      expect(taken.stderr).toMatch(/already taken/);
      expect(existsSync(join(delta.home, 'tls'))).toBe(false);
      // A forged secret: the last part of the token changed. Refused as a token, before the
      // name (taken or not) is looked at: nothing about the workspace is told to it.
      const forged = `${invite.body.token.slice(0, -4)}AAAA`;
      const probe = await delta.run(['join', forged, '--server', alpha.address, '--name', 'beta']);
      expect(probe.code).toBe(3);
      expect(probe.stderr).toMatch(/not one this workspace issued/);
      expect(probe.stderr).not.toMatch(/taken/);
      const bad = await delta.run(['join', forged, '--server', alpha.address, '--name', 'delta']);
      expect(bad.code).toBe(3);
      expect(existsSync(join(delta.home, 'tls'))).toBe(false);
      // The real token still joins, once.
      await mustRun(delta, ['join', invite.body.token, '--server', alpha.address, '--name', 'delta']);
      const echo = makeHost('echo', '127.0.0.6', root);
      const again = await echo.run(['join', invite.body.token, '--server', alpha.address, '--name', 'echo']);
      expect(again.code).toBe(3);
      expect(again.stderr).toMatch(/already used/);
      expect(existsSync(join(echo.home, 'tls'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a member that is not the CA host is refused as the join server, and the token is not sent', async () => {
    const invite = await alpha.json<{ token: string }>(['workspace', 'invite', '--ttl', '5m']);
    const root = mkdtempSync(join(tmpdir(), 'cmdop-join-'));
    try {
      const hotel = makeHost('hotel', '127.0.0.10', root);
      const r = await hotel.run(['join', invite.body.token, '--server', beta.address, '--name', 'hotel']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/alpha/);
      expect(existsSync(join(hotel.home, 'tls'))).toBe(false);
      // Through the CA host, the same token still works: it was never sent to beta.
      await mustRun(hotel, ['join', invite.body.token, '--server', alpha.address, '--name', 'hotel']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a server whose CA is not the one in the token is refused before anything is sent', async () => {
    const invite = await alpha.json<{ token: string }>(['workspace', 'invite', '--ttl', '5m']);
    const root = mkdtempSync(join(tmpdir(), 'cmdop-join-'));
    try {
      const foxtrot = makeHost('foxtrot', '127.0.0.7', root);
      // beta is a member, but not the CA: its chain carries the same CA, so point at a host of
      // another workspace instead: a fresh single-host workspace.
      const other = makeHost('other', '127.0.0.8', root);
      await mustRun(other, ['config', 'set', 'agent.listen', '127.0.0.8:0']);
      await other.start();
      try {
        const r = await foxtrot.run(['join', invite.body.token, '--server', other.address, '--name', 'foxtrot']);
        expect(r.code).toBe(3);
        expect(r.stderr).toMatch(/not of the workspace this credential was made for/);
        expect(existsSync(join(foxtrot.home, 'tls'))).toBe(false);
      } finally {
        await other.stop();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the local socket', () => {
  it('is 0600, with a 0600 token in a 0700 run/, and refuses a request without the token', async () => {
    const run = join(alpha.home, 'run');
    expect(statSync(run).mode & 0o777).toBe(0o700);
    expect(statSync(join(run, 'agent.sock')).mode & 0o777).toBe(0o600);
    expect(statSync(join(run, 'local.token')).mode & 0o777).toBe(0o600);
    for (const auth of [undefined, 'Bearer wrong-token']) {
      const status = await new Promise<number>((resolveStatus, reject) => {
        const req = request({ socketPath: join(run, 'agent.sock'), path: '/v1/status', headers: auth === undefined ? {} : { authorization: auth } }, (res) => {
          res.resume();
          resolveStatus(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(401);
    }
  });
});

describe('calls between hosts', () => {
  it('an allowed call runs on the receiver, and its audit log names the caller from its certificate', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(echo *)']);
    const r = await beta.run(['connect', 'exec', 'alpha', '--', 'echo', 'hello from beta']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello from beta\n');
    const lines = alpha.audit().filter((l) => l.target === 'echo hello from beta');
    expect(lines.map((l) => l.event)).toEqual(['decision', 'outcome']);
    expect(lines[0]).toMatchObject({ decision: 'allow', source: 'rule', hostname: 'beta', user: 'host:beta', tool: 'execute_command' });
    expect(lines[1]).toMatchObject({ outcome: { status: 'ok', exit_code: 0 } });
  });

  it('--json gives the documented shape and the exit code mirrors the remote command', async () => {
    await mustRun(gamma, ['permissions', 'allow', 'execute_command(exit *)']);
    const r = await alpha.run(['connect', 'exec', 'gamma', '--json', '--', 'exit 42']);
    expect(r.code).toBe(42);
    const body = JSON.parse(r.stdout) as ExecJson;
    expect(body).toMatchObject({ hostname: 'gamma', ran: true, exit_code: 42, stdout: '', decision: { decision: 'allow', source: 'rule', rule: 'execute_command(exit *)' } });
  });

  it('a denied call does not run: exit 3, the reason on stderr, a deny line on the receiver', async () => {
    await mustRun(alpha, ['permissions', 'deny', 'execute_command(touch *)']);
    const marker = `/tmp/cmdop-pwned-${process.pid}`;
    const r = await beta.run(['connect', 'exec', 'alpha', '--', `echo ok; touch ${marker}`]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/denied by alpha/);
    expect(r.stderr).toMatch(/execute_command\(touch \*\)/);
    expect(existsSync(marker)).toBe(false);
    const line = alpha.audit().find((l) => typeof l.target === 'string' && l.target.includes(marker));
    expect(line).toMatchObject({ event: 'decision', decision: 'deny', hostname: 'beta' });
    expect(alpha.audit().filter((l) => l.call_id === line?.call_id)).toHaveLength(1);
  });

  it('the floor refuses a remote call whatever the rules say', async () => {
    await mustRun(gamma, ['permissions', 'allow', 'execute_command(*)']);
    const r = await beta.json<ExecJson>(['connect', 'exec', 'gamma', '--', 'cat ~/.ssh/id_rsa']);
    expect(r.code).toBe(3);
    expect(r.body).toMatchObject({ ran: false, decision: { decision: 'deny', source: 'floor' } });
    await mustRun(gamma, ['permissions', 'revoke', 'execute_command(*)']);
  });

  it('read, write and ls go through the receiver gate too', async () => {
    // Outside CMDOP_HOME, which the floor protects.
    const dir = mkdtempSync(`${tmpdir()}/cmdop-share-`);
    await mustRun(gamma, ['permissions', 'allow', `write_file(${dir}/**)`]);
    const w = await alpha.run(['connect', 'write', 'gamma', `${dir}/note.txt`], { stdin: 'a note\n' });
    expect(w.code).toBe(0);
    const rd = await alpha.run(['connect', 'read', 'gamma', `${dir}/note.txt`]);
    expect(rd.code).toBe(0);
    expect(rd.stdout).toBe('a note\n');
    const ls = await alpha.json<{ result?: { entries: { name: string }[] }; entries?: { name: string }[] }>(['connect', 'ls', 'gamma', dir]);
    expect(ls.code).toBe(0);
    expect(JSON.stringify(ls.body)).toContain('note.txt');
    // Outside the allowed tree: write_file is dangerous, so default mode asks, and no operator is there.
    const outside = await alpha.run(['connect', 'write', 'gamma', `${dir}-elsewhere.txt`], { stdin: 'x' });
    expect(outside.code).toBe(3);
  });

  it('an unknown host is exit 4, a stopped one exit 7, promptly', async () => {
    const unknown = await beta.run(['connect', 'exec', 'nosuchhost', '--', 'echo', 'x']);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/unknown host/);
  });
});

describe('deadlines and cancellation', () => {
  it('--timeout kills the remote command and says so', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(sleep *)']);
    const started = Date.now();
    const r = await beta.json<ExecJson & { timed_out: boolean }>(['connect', 'exec', 'alpha', '--timeout', '1', '--', 'sleep 7']);
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(r.body).toMatchObject({ ran: true, timed_out: true });
    expect(r.code).not.toBe(0);
  });

  it('a caller that goes away cancels the call, and the receiver kills the command', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(sleep *)']);
    const marker = `sleep 31.${process.pid % 1000}`;
    const child = spawn(process.execPath, [CMDOP_BIN, 'connect', 'exec', 'alpha', '--', marker], { env: { ...process.env, CMDOP_HOME: beta.home } });
    const decision = await eventually('the decision line on alpha', async () => Promise.resolve(alpha.audit().find((l) => l.target === marker && l.event === 'decision')));
    child.kill('SIGKILL');
    const outcome = await eventually('the outcome line on alpha', async () => Promise.resolve(alpha.audit().find((l) => l.call_id === decision.call_id && l.event === 'outcome')), 15_000);
    expect(outcome).toMatchObject({ outcome: { status: 'interrupted' } });
    // Nothing of the command is left running on the receiver.
    const running = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .some((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(marker);
        } catch {
          return false;
        }
      });
    expect(running).toBe(false);
  });
});

describe('ask prompts', () => {
  it('with no operator connected, an ask is denied at once and audited as ask_denied', async () => {
    const started = Date.now();
    const r = await beta.run(['connect', 'exec', 'alpha', '--', 'uname -a']);
    expect(r.code).toBe(3);
    // At once: well inside ask_timeout, and the prompt itself waited no time at all.
    expect(Date.now() - started).toBeLessThan((ASK_TIMEOUT_S * 1000) / 2);
    expect(r.stderr).toMatch(/no operator/);
    const line = alpha.audit().find((l) => l.target === 'uname -a');
    expect(line).toMatchObject({ decision: 'ask_denied', hostname: 'beta', ask_ms: 0 });
  });

  it('an operator answers "allow for this session": the call runs, and the session rule shows in list --mode session', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      const call = beta.run(['connect', 'exec', 'alpha', '--', 'uname -s']);
      const prompt = await operator.next((e) => e.type === 'prompt');
      const p = prompt.prompt as { id: string; caller_host: string; target: string; asked_by: string };
      expect(p).toMatchObject({ caller_host: 'beta', target: 'uname -s', asked_by: 'mode default' });
      const pending = await alpha.json<{ prompts: { id: string }[] }>(['permissions', 'pending']);
      expect(pending.body.prompts.map((x) => x.id)).toContain(p.id);
      const answered = await alpha.run(['permissions', 'answer', p.id, 'allow', '--scope', 'session']);
      expect(answered.code).toBe(0);
      const r = await call;
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('Linux\n');
      const line = alpha.audit().find((l) => l.target === 'uname -s' && l.event === 'decision');
      expect(line).toMatchObject({ decision: 'ask_allowed', hostname: 'beta' });
      expect(line?.ask_ms).toBeGreaterThan(0);
      const session = await alpha.json<{ rules?: { rule: string; scope: string }[] }>(['permissions', 'list', '--mode', 'session']);
      expect(JSON.stringify(session.body)).toContain('execute_command(uname -s)');
      // The same call is now allowed by the session rule, with no prompt.
      const again = await beta.run(['connect', 'exec', 'alpha', '--', 'uname -s']);
      expect(again.code).toBe(0);
    } finally {
      operator.stop();
    }
  });

  it('an unanswered prompt is denied after ask_timeout and audited as ask_timeout', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      const started = Date.now();
      const r = await beta.run(['connect', 'exec', 'alpha', '--', 'uname -r']);
      expect(r.code).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(ASK_TIMEOUT_S * 1000 - 100);
      const line = alpha.audit().find((l) => l.target === 'uname -r');
      expect(line).toMatchObject({ decision: 'ask_timeout' });
    } finally {
      operator.stop();
    }
  });

  it('a prompt answered deny refuses the call', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      const call = beta.run(['connect', 'exec', 'alpha', '--', 'uname -m']);
      const prompt = await operator.next((e) => e.type === 'prompt');
      const id = (prompt.prompt as { id: string }).id;
      await mustRun(alpha, ['permissions', 'answer', id, 'deny']);
      const r = await call;
      expect(r.code).toBe(3);
      expect(alpha.audit().find((l) => l.target === 'uname -m')).toMatchObject({ decision: 'ask_denied' });
    } finally {
      operator.stop();
    }
  });

  it('a rule made or tightened while the operator looks still wins over the answer', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      const call = beta.run(['connect', 'exec', 'alpha', '--', 'uname -p']);
      const prompt = await operator.next((e) => e.type === 'prompt');
      await mustRun(alpha, ['permissions', 'deny', 'execute_command(uname -p)']);
      await mustRun(alpha, ['permissions', 'answer', (prompt.prompt as { id: string }).id, 'allow']);
      const r = await call;
      expect(r.code).toBe(3);
      expect(alpha.audit().find((l) => l.target === 'uname -p')).toMatchObject({ decision: 'ask_denied', source: 'rule' });
    } finally {
      operator.stop();
    }
  });

  it('"allow for this session" on a target no rule can spell holds for that call only, and breaks nothing', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      // A trailing blank: the exact rule would not parse.
      const call = beta.run(['connect', 'exec', 'alpha', 'uname -i ']);
      const prompt = await operator.next((e) => e.type === 'prompt');
      await mustRun(alpha, ['permissions', 'answer', (prompt.prompt as { id: string }).id, 'allow', '--scope', 'session']);
      expect((await call).code).toBe(0);
    } finally {
      operator.stop();
    }
    // The daemon still decides every call, and the next one asks again (no operator: denied).
    expect((await alpha.run(['agent', 'status'])).code).toBe(0);
    expect((await beta.run(['connect', 'exec', 'alpha', '--', 'echo', 'fine'])).code).toBe(0);
    expect((await beta.run(['connect', 'exec', 'alpha', 'uname -i '])).code).toBe(3);
  });

  it('a target too long to show the operator is denied without a prompt', async () => {
    const operator = startOperator(alpha);
    try {
      await operator.next((e) => e.type === 'snapshot');
      const long = `uname ${'x'.repeat(5000)}`;
      const r = await beta.run(['connect', 'exec', 'alpha', long]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/too long/);
    } finally {
      operator.stop();
    }
  });

  it('answering an unknown prompt id is exit 4', async () => {
    const r = await alpha.run(['permissions', 'answer', '0123456789abcdef0123456789abcdef', 'allow']);
    expect(r.code).toBe(4);
  });
});

interface OperatorEventLine {
  type: string;
  prompt?: unknown;
  [key: string]: unknown;
}

/** `cmdop permissions prompts --json` as a script would run it, staying connected as the operator. */
function startOperator(host: TestHost): { next: (match: (e: OperatorEventLine) => boolean, timeoutMs?: number) => Promise<OperatorEventLine>; stop: () => void } {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [CMDOP_BIN, 'permissions', 'prompts', '--json'], { env: { ...process.env, CMDOP_HOME: host.home } });
  const events: OperatorEventLine[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    events.push(JSON.parse(line) as OperatorEventLine);
    for (const w of waiters.splice(0)) w();
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let seen = 0;
  return {
    next: (match, timeoutMs = 15_000) =>
      new Promise((resolveEvent, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no matching operator event within ${timeoutMs} ms; got ${JSON.stringify(events)}; stderr: ${stderr}`));
        }, timeoutMs);
        const look = (): void => {
          while (seen < events.length) {
            const e = events[seen++] as OperatorEventLine;
            if (match(e)) {
              clearTimeout(timer);
              resolveEvent(e);
              return;
            }
          }
          waiters.push(look);
        };
        look();
      }),
    stop: () => {
      child.kill('SIGINT');
    },
  };
}
