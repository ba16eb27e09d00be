/**
 * Callers that are not hosts, end to end with real daemons from the built binary (issue 4): a
 * CI-like machine outside the workspace calls with a workspace API key, a guest with a share
 * token. Both are gated by the receiver like any remote caller and audited under their own
 * principal; expired, revoked, tampered and misdirected credentials are refused.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithBearer } from '../../src/transport/grpc-client.js';
import { eventually, makeHost, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

let cleanup: () => Promise<void>;
let root: string;
let alpha: TestHost;
let beta: TestHost;
/** A machine outside the workspace: no daemon, no certificate. */
let outside: TestHost;

beforeAll(async () => {
  const made = await makeWorkspace(['alpha', 'beta'], { announceIntervalSeconds: 1, ips: ['127.0.0.41', '127.0.0.42'] });
  cleanup = made.cleanup;
  root = made.root;
  [alpha, beta] = made.hosts as [TestHost, TestHost];
  outside = makeHost('outside', '127.0.0.43', root);
  mkdirSync(outside.home, { recursive: true, mode: 0o700 });
  await mustRun(beta, ['permissions', 'allow', 'execute_command(echo *)']);
  await mustRun(beta, ['permissions', 'allow', 'read_file(/tmp/**)']);
}, 120_000);

afterAll(async () => {
  await cleanup();
});

interface Created {
  key: string;
  name: string;
  principal: string;
}

async function createKey(name: string, extra: readonly string[] = []): Promise<string> {
  const made = await alpha.json<Created>(['workspace', 'keys', 'create', '--name', name, ...extra]);
  expect(made.code, made.stderr).toBe(0);
  expect(made.body.principal).toBe(`key:${name}`);
  return made.body.key;
}

function auditFor(host: TestHost, user: string): Record<string, unknown>[] {
  return host.audit().filter((l) => l.user === user);
}

/** The key with its payload changed (a field set to `value`), keeping its secret. */
function tamper(key: string, field: string, value: unknown): string {
  const [prefix, payload, secret] = key.split('.') as [string, string, string];
  const json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  json[field] = value;
  return `${prefix}.${Buffer.from(JSON.stringify(json)).toString('base64url')}.${secret}`;
}

describe('workspace API keys', () => {
  it('a machine outside the workspace calls beta with CMDOP_API_KEY, found through the CA host, gated and audited as key:ci', async () => {
    const key = await createKey('ci');
    const ran = await outside.run(['connect', 'exec', 'beta', '--', 'echo from ci'], { env: { CMDOP_API_KEY: key } });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('from ci\n');
    expect(ran.stderr).not.toContain(key);
    // Not allowed by a rule: beta's mode asks, nobody answers, denied (exit 3); the allow rule decided the echo.
    const denied = await outside.run(['connect', 'exec', 'beta', '--', 'touch /tmp/x'], { env: { CMDOP_API_KEY: key } });
    expect(denied.code, denied.stderr).toBe(3);
    // The denial's line is written after the answer went out: wait for it.
    const lines = await eventually('beta to audit both calls', () => {
      const found = auditFor(beta, 'key:ci');
      return Promise.resolve(found.some((l) => l.decision === 'ask_denied' && l.target === 'touch /tmp/x') ? found : undefined);
    });
    const allowed = lines.find((l) => l.event === 'decision' && l.decision === 'allow' && l.target === 'echo from ci');
    expect(allowed).toMatchObject({ hostname: '-', user: 'key:ci' });
    // Where it called from is noted, for the operator; hosts' lines carry no address.
    expect(allowed?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(beta.audit().filter((l) => l.user === 'host:alpha' || l.user === 'host:beta').every((l) => l.address === undefined)).toBe(true);
    expect(readFileSync(join(beta.home, 'logs', 'audit.log'), 'utf8')).not.toContain(key.split('.')[2]);
  });

  it('connect key set stores the key (0600, never printed), makes its workspace active, and whoami explains the choice', async () => {
    const key = await createKey('laptop');
    const set = await outside.json<{ name: string; principal: string; store: string }>(['connect', 'key', 'set', key]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.body).toMatchObject({ principal: 'key:laptop', store: 'file' });
    expect(JSON.stringify(set.body)).not.toContain(key);
    const file = join(outside.home, 'ssh_workspaces.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const who = await outside.json<{ source: string; principal: string; passed_over: string[]; active_workspace: string }>(['whoami']);
    expect(who.body).toMatchObject({ source: 'active_workspace', principal: 'key:laptop' });
    expect(who.body.passed_over.join('\n')).toMatch(/CMDOP_API_KEY: not set/);
    expect(JSON.stringify(who.body)).not.toContain(key);
    // An explicit key beats the stored one.
    const other = await createKey('explicit');
    const flag = await outside.json<{ source: string; principal: string }>(['whoami', '--api-key', other]);
    expect(flag.body).toMatchObject({ source: 'flag', principal: 'key:explicit' });
    const env = await outside.run(['whoami', '--json'], { env: { CMDOP_API_KEY: other } });
    expect(JSON.parse(env.stdout)).toMatchObject({ source: 'env', principal: 'key:explicit' });

    const ran = await outside.run(['connect', 'exec', 'beta', '--', 'echo stored key']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(auditFor(beta, 'key:laptop').some((l) => l.target === 'echo stored key')).toBe(true);

    // A secrets file others can read is refused, not used: exit 6, naming the fix; nothing runs.
    chmodSync(file, 0o644);
    try {
      const loose = await outside.run(['connect', 'exec', 'beta', '--', 'echo loose file']);
      expect(loose.code, loose.stderr).toBe(6);
      expect(loose.stderr).toContain(file);
      expect(loose.stderr).toMatch(/chmod 600/);
      expect(loose.stderr).not.toContain(key);
      expect(beta.audit().some((l) => l.target === 'echo loose file')).toBe(false);
    } finally {
      chmodSync(file, 0o600);
    }
  }, 60_000);

  it('a key revoked on the CA host is refused by beta mid-session, within a few announce intervals', async () => {
    const key = await createKey('revoke-me');
    // Straight to beta (--address), so it is beta that must refuse, not the CA host's roster.
    const before = await outside.run(['connect', 'exec', 'beta', '--address', beta.address, '--', 'echo before'], { env: { CMDOP_API_KEY: key } });
    expect(before.code, before.stderr).toBe(0);
    await mustRun(alpha, ['workspace', 'keys', 'revoke', 'revoke-me']);
    const refused = await eventually('beta to refuse the revoked key', async () => {
      const r = await outside.run(['connect', 'exec', 'beta', '--address', beta.address, '--', 'echo after'], { env: { CMDOP_API_KEY: key } });
      return r.code === 3 ? r : undefined;
    });
    expect(refused.stderr).toMatch(/revoked/);
    expect(refused.stdout).toBe('');
    // Refused before the gate, and audited as an identity refusal.
    const refusalLines = (): number => beta.audit().filter((l) => l.source === 'identity' && typeof l.reason === 'string' && l.reason.includes('"revoke-me" was revoked')).length;
    await eventually('beta to audit the refusal', () => Promise.resolve(refusalLines() > 0 ? true : undefined));
    // The same refusal again from the same address, each on a new connection, is counted, not
    // written again: a client cannot rotate the audit history away by retrying.
    const written = refusalLines();
    for (let i = 0; i < 3; i++) {
      expect((await outside.run(['connect', 'exec', 'beta', '--address', beta.address, '--', 'echo again'], { env: { CMDOP_API_KEY: key } })).code).toBe(3);
    }
    expect(refusalLines()).toBe(written);
  });

  it('an expired key is refused by the host it is presented to, and by the CA host', async () => {
    const key = await createKey('short', ['--ttl', '2s']);
    await new Promise((r) => setTimeout(r, 2_500));
    // Straight to beta (--address): beta itself must refuse it.
    const r = await outside.run(['connect', 'exec', 'beta', '--address', beta.address, '--', 'echo late'], { env: { CMDOP_API_KEY: key } });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/expired/);
    expect(r.stdout).toBe('');
    await eventually('beta to audit the refusal', () =>
      Promise.resolve(beta.audit().some((l) => l.source === 'identity' && l.decision === 'deny' && typeof l.reason === 'string' && l.reason.includes('"short"') && l.reason.includes('expired')) ? true : undefined),
    );
    expect(beta.audit().some((l) => l.target === 'echo late')).toBe(false);
    const viaRoster = await outside.run(['connect', 'exec', 'beta', '--', 'echo late'], { env: { CMDOP_API_KEY: key } });
    expect(viaRoster.code, viaRoster.stderr).toBe(3);
    expect(viaRoster.stderr).toMatch(/expired/);
  });

  it('a tampered key (its name changed) is refused by the host; a key of another workspace never reaches it', async () => {
    const key = await createKey('honest');
    const forged = tamper(key, 'name', 'admin');
    const r = await outside.run(['connect', 'exec', 'beta', '--address', beta.address, '--', 'echo forged'], { env: { CMDOP_API_KEY: forged } });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/not one this workspace issued/);
    await eventually('beta to audit the refusal', () =>
      Promise.resolve(beta.audit().some((l) => l.source === 'identity' && typeof l.reason === 'string' && l.reason.includes('not one this workspace issued')) ? true : undefined),
    );
    expect(auditFor(beta, 'key:admin')).toEqual([]);
    expect(beta.audit().some((l) => l.target === 'echo forged')).toBe(false);
    const foreign = tamper(key, 'fp', 'a'.repeat(64));
    const f = await outside.run(['connect', 'exec', 'beta', '--', 'echo foreign'], { env: { CMDOP_API_KEY: foreign } });
    expect(f.code, f.stderr).toBe(3);
    expect(f.stderr).toMatch(/not of the workspace this credential was made for/);
  });

  it('a bearer credential cannot announce, renew or pose as a host', async () => {
    const key = await createKey('not-a-host');
    const client = await connectWithBearer({ address: alpha.address, caFingerprint: (JSON.parse(Buffer.from(key.split('.')[1] ?? '', 'base64url').toString()) as { fp: string }).fp, expectedHostName: 'alpha', bearer: () => Promise.resolve(key) });
    try {
      await expect(client.announce({ address: '127.0.0.43:1' })).rejects.toMatchObject({ code: 'denied' });
      const roster = await client.roster();
      expect(roster.peers.map((p) => p.name).sort()).toEqual(['alpha', 'beta']);
      expect(roster.revoked).toEqual([]);
    } finally {
      client.close();
    }
  });
});

describe('share links', () => {
  interface Share {
    id: string;
    token: string;
    host: string;
    principal: string;
    expires_at: string;
  }

  it('beta shares itself for an hour; a guest outside the workspace runs a command as guest:<id>; alpha refuses the token', async () => {
    const share = await beta.json<Share>(['connect', 'share', 'beta', '--ttl', '1h']);
    expect(share.code, share.stderr).toBe(0);
    expect(share.body.principal).toBe(`guest:${share.body.id}`);
    const guest = makeHost('guest', '127.0.0.44', root);
    mkdirSync(guest.home, { recursive: true, mode: 0o700 });
    const ran = await guest.run(['connect', 'exec', 'beta', '--share', share.body.token, '--', 'echo guest here']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('guest here\n');
    expect(auditFor(beta, `guest:${share.body.id}`).some((l) => l.target === 'echo guest here' && l.decision === 'allow')).toBe(true);
    // The gate still decides: a read outside the allowed paths is asked, and nobody answers.
    const read = await guest.run(['connect', 'read', 'beta', '/etc/hostname', '--share', share.body.token]);
    expect(read.code, read.stderr).toBe(3);

    // The CLI will not send a token to a host it does not open…
    const wrongHost = await guest.run(['connect', 'exec', 'alpha', '--share', share.body.token, '--', 'echo no']);
    expect(wrongHost.code).toBe(2);
    // …and a host it does not name refuses it anyway.
    const fp = (JSON.parse(Buffer.from(share.body.token.split('.')[1] ?? '', 'base64url').toString()) as { fp: string }).fp;
    const client = await connectWithBearer({ address: alpha.address, caFingerprint: fp, expectedHostName: 'alpha', bearer: () => Promise.resolve(share.body.token) });
    try {
      await expect(client.executeCommand({ command: 'echo no' })).rejects.toMatchObject({ code: 'denied' });
      await expect(client.ping()).rejects.toMatchObject({ code: 'denied' });
    } finally {
      client.close();
    }
    // A guest does not get the workspace's roster from its own host either.
    const own = await connectWithBearer({ address: beta.address, caFingerprint: fp, expectedHostName: 'beta', bearer: () => Promise.resolve(share.body.token) });
    try {
      await expect(own.roster()).rejects.toMatchObject({ code: 'denied' });
    } finally {
      own.close();
    }
  });

  it('an expired link is refused by its own host, and audited there', async () => {
    const share = (await beta.json<Share>(['connect', 'share', 'beta', '--ttl', '1h'])).body;
    const guest = makeHost('guest3', '127.0.0.46', root);
    mkdirSync(guest.home, { recursive: true, mode: 0o700 });
    expect((await guest.run(['connect', 'exec', 'beta', '--share', share.token, '--', 'echo in time'])).code).toBe(0);
    // An hour cannot pass in a test: beta's record of the link is moved an hour back instead,
    // as it stands once the hour is over. The token the guest holds is unchanged.
    const file = join(beta.home, 'shares.json');
    const text = readFileSync(file, 'utf8');
    const past = new Date(Date.now() - 1_000).toISOString();
    writeFileSync(file, text.replace(`"expires_at": "${share.expires_at}"`, `"expires_at": "${past}"`));
    expect(readFileSync(file, 'utf8')).toContain(past);
    const late = await guest.run(['connect', 'exec', 'beta', '--share', share.token, '--', 'echo too late']);
    expect(late.code, late.stderr).toBe(3);
    expect(late.stderr).toMatch(/expired/);
    expect(beta.audit().some((l) => l.target === 'echo too late')).toBe(false);
    await eventually('beta to audit the refusal', () =>
      Promise.resolve(beta.audit().some((l) => l.source === 'identity' && typeof l.reason === 'string' && l.reason.includes(share.id) && l.reason.includes('expired')) ? true : undefined),
    );
  });

  it('share revoke ID and --all end the guests at once', async () => {
    const one = (await beta.json<Share>(['connect', 'share', 'beta', '--ttl', '1h'])).body;
    const two = (await beta.json<Share>(['connect', 'share', 'beta', '--ttl', '2h'])).body;
    const guest = makeHost('guest2', '127.0.0.45', root);
    mkdirSync(guest.home, { recursive: true, mode: 0o700 });
    expect((await guest.run(['connect', 'exec', 'beta', '--share', one.token, '--', 'echo one'])).code).toBe(0);
    await mustRun(beta, ['connect', 'share', 'revoke', one.id]);
    const after = await guest.run(['connect', 'exec', 'beta', '--share', one.token, '--', 'echo one']);
    expect(after.code).toBe(3);
    expect(after.stderr).toMatch(/revoked/);
    expect((await guest.run(['connect', 'exec', 'beta', '--share', two.token, '--', 'echo two'])).code).toBe(0);
    await mustRun(beta, ['connect', 'share', 'revoke', '--all']);
    expect((await guest.run(['connect', 'exec', 'beta', '--share', two.token, '--', 'echo two'])).code).toBe(3);
    const list = await beta.json<{ id: string; state: string }[] | { shares: { id: string; state: string }[] }>(['connect', 'share', 'list']);
    const rows = Array.isArray(list.body) ? list.body : list.body.shares;
    expect(rows.filter((s) => s.id === one.id || s.id === two.id).map((s) => s.state)).toEqual(['revoked', 'revoked']);
  });
});
