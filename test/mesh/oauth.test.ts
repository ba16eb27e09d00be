/**
 * OAuth login end to end (issue 4 §2): a real OpenID provider (oidc-provider, in this process),
 * real daemons from the built binary. The CA host sets the workspace's provider, every host
 * learns it; `cmdop login` runs the device flow; hosts validate the access tokens and gate the
 * calls as user:<subject>; the daemon refreshes the token before it expires, even while a second
 * login runs, without losing the refresh token; tampered, expired, wrong-audience and foreign
 * tokens are refused.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverProvider, refreshTokens, validateOidcSettings } from '../../src/identity/oidc.js';
import { caFingerprint } from '../../src/identity/workspace-ca.js';
import { connectWithBearer } from '../../src/transport/grpc-client.js';
import { eventually, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';
import { CMDOP_BIN } from '../helpers/run-cmdop.js';

let cleanup: () => Promise<void>;
let alpha: TestHost;
let beta: TestHost;
let provider: TestOidcProvider;

beforeAll(async () => {
  // 301 s: always within the daemon's five-minute lead, so it refreshes every few seconds, rotating the refresh token each time.
  provider = await startOidcProvider({ accessTokenTtlSeconds: 301, rotateRefreshToken: true, minPollIntervalMs: 500 });
  const made = await makeWorkspace(['alpha', 'beta'], { announceIntervalSeconds: 1, ips: ['127.0.0.51', '127.0.0.52'] });
  cleanup = made.cleanup;
  [alpha, beta] = made.hosts as [TestHost, TestHost];
  await mustRun(beta, ['permissions', 'allow', 'execute_command(echo *)']);
  await mustRun(alpha, ['permissions', 'allow', 'execute_command(echo *)']);
}, 120_000);

afterAll(async () => {
  await cleanup();
  await provider.close();
});

/** Runs `cmdop login` on `host`, approving the code it shows as `subject` the way a person would. */
function loginAs(host: TestHost, subject: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CMDOP_BIN, 'login', '--json'], { env: { ...process.env, CMDOP_HOME: host.home, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let approved = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      const code = /enter the code: (\S+)/.exec(stderr)?.[1];
      if (code !== undefined && !approved) {
        approved = true;
        provider.approve(code, subject).catch(reject);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

function caFp(host: TestHost): string {
  return caFingerprint(readFileSync(join(host.home, 'tls', 'ca.crt'), 'utf8'));
}

async function callBeta(token: string): Promise<unknown> {
  const client = await connectWithBearer({ address: beta.address, caFingerprint: caFp(beta), expectedHostName: 'beta', bearer: () => Promise.resolve(token) });
  try {
    return await client.executeCommand({ command: 'echo direct' });
  } finally {
    client.close();
  }
}

describe('OAuth login', () => {
  it('without a provider set, login says what to do (exit 6)', async () => {
    const r = await alpha.run(['login']);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/workspace oidc set/);
  });

  it('the CA host sets the provider; beta learns it; a bad issuer is refused with exit 2 and changes nothing', async () => {
    const bad = await alpha.run(['workspace', 'oidc', 'set', '--issuer', 'http://login.example.com', '--client-id', 'x']);
    expect(bad.code, bad.stderr).toBe(2);
    const set = await alpha.json<{ workspace_wide: boolean; issuer: string }>(['workspace', 'oidc', 'set', '--issuer', provider.issuer, '--client-id', provider.clientId, '--audience', provider.audience]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.body).toMatchObject({ workspace_wide: true, issuer: provider.issuer, warning: null });
    // On a host that is not the CA host the setting is only where its own `login` goes, and without an audience it warns.
    const local = await beta.json<{ workspace_wide: boolean; warning: string | null }>(['workspace', 'oidc', 'set', '--issuer', provider.issuer, '--client-id', provider.clientId]);
    expect(local.body.workspace_wide).toBe(false);
    expect(local.body.warning).toMatch(/without --audience/);
    await eventually('beta to receive the provider', () => {
      try {
        const text = readFileSync(join(beta.home, 'tls', 'workspace-credentials.json'), 'utf8');
        return Promise.resolve((JSON.parse(text) as { oidc: { issuer: string } | null }).oidc?.issuer === provider.issuer ? true : undefined);
      } catch {
        return Promise.resolve(undefined);
      }
    });
  });

  it('login runs the device flow; calls go to beta as user:alice, gated and audited', async () => {
    const login = await loginAs(alpha, 'alice');
    expect(login.code, login.stderr).toBe(0);
    expect(JSON.parse(login.stdout)).toMatchObject({ logged_in: true, principal: 'user:alice' });
    expect(login.stderr).toMatch(/To log in, open http:\/\/127\.0\.0\.1:\d+/);
    const who = await alpha.json<{ source: string; principal: string }>(['whoami']);
    expect(who.body).toMatchObject({ source: 'oauth', principal: 'user:alice' });

    const ran = await alpha.run(['connect', 'exec', 'beta', '--', 'echo as alice']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe('as alice\n');
    // Its own host too is called as user:alice, at the port its daemon really listens on (agent.listen says port 0).
    const self = await alpha.run(['connect', 'exec', 'alpha', '--', 'echo self as alice']);
    expect(self.code, self.stderr).toBe(0);
    await eventually('alpha to audit user:alice', () => Promise.resolve(alpha.audit().some((l) => l.user === 'user:alice' && l.target === 'echo self as alice') ? true : undefined));
    await eventually('beta to audit user:alice', () =>
      Promise.resolve(beta.audit().some((l) => l.user === 'user:alice' && l.target === 'echo as alice' && l.decision === 'allow') ? true : undefined),
    );
    // No token anywhere in what the CLI printed or the hosts logged.
    const secrets = readFileSync(join(alpha.home, 'secrets.json'), 'utf8');
    const tokens = Object.values((JSON.parse(secrets) as { services: Record<string, Record<string, string>> }).services).flatMap((a) => Object.values(a));
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      expect(ran.stdout + ran.stderr + who.stderr + JSON.stringify(who.body)).not.toContain(token);
      expect(readFileSync(join(beta.home, 'logs', 'audit.log'), 'utf8')).not.toContain(token);
      expect(readFileSync(join(alpha.home, 'logs', 'agent.log'), 'utf8')).not.toContain(token);
    }
  });

  it('the daemon refreshes the token before it expires, and a second login at the same time loses no refresh token', async () => {
    const session = (): { refreshed_at: string | null; logged_in_at: string } => JSON.parse(readFileSync(join(alpha.home, 'oauth.json'), 'utf8')) as { refreshed_at: string | null; logged_in_at: string };
    const first = await eventually('the daemon to refresh', () => Promise.resolve(session().refreshed_at ?? undefined), 20_000);
    // Log in again while the daemon keeps refreshing (every few seconds, rotating the refresh token).
    const again = await loginAs(alpha, 'alice');
    expect(again.code, again.stderr).toBe(0);
    const loggedInAt = session().logged_in_at;
    expect(Date.parse(loggedInAt)).toBeGreaterThan(Date.parse(first));
    // The daemon goes on refreshing from what the login stored: a lost update would replay a spent refresh token.
    await eventually('the daemon to refresh after the second login', () => {
      const s = session();
      return Promise.resolve(s.refreshed_at !== null && Date.parse(s.refreshed_at) > Date.parse(s.logged_in_at) ? true : undefined);
    }, 20_000);
    const log = readFileSync(join(alpha.home, 'logs', 'agent.log'), 'utf8');
    expect(log).not.toMatch(/could not refresh the OAuth access token/);
    const ran = await alpha.run(['connect', 'exec', 'beta', '--', 'echo still alice']);
    expect(ran.code, ran.stderr).toBe(0);
  });

  it('beta refuses tampered, expired, wrong-audience, wrong-issuer and foreign-key tokens, and accepts a good one', async () => {
    const good = await provider.signToken({ sub: 'bob' });
    await expect(callBeta(good)).resolves.toMatchObject({ stdout: 'direct\n' });
    const [h, p, s] = good.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: 'root' })).toString('base64url')}.${s}`;
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, string> = {
      tampered,
      expired: await provider.signToken({ exp: now - 600, iat: now - 1200 }),
      'wrong audience': await provider.signToken({ aud: 'https://elsewhere.test' }),
      'wrong issuer': await provider.signToken({ iss: 'http://127.0.0.1:1' }),
      'foreign key': await provider.signToken({}, { signer: 'stranger' }),
    };
    for (const [what, token] of Object.entries(cases)) {
      await expect(callBeta(token), what).rejects.toMatchObject({ code: 'denied' });
    }
    expect(beta.audit().some((l) => l.user === 'user:root')).toBe(false);
  });

  it('logout revokes the refresh token at the provider and forgets the session; the connect verbs fall back to the host certificate', async () => {
    const secrets = JSON.parse(readFileSync(join(alpha.home, 'secrets.json'), 'utf8')) as { services: Record<string, Record<string, string>> };
    const refresh = secrets.services['cmdop-oauth']?.refresh_token;
    expect(refresh).toBeDefined();
    const out = await alpha.json<{ logged_out: boolean; revoked_at_provider: boolean | null }>(['logout']);
    expect(out.body).toMatchObject({ logged_out: true, revoked_at_provider: true });
    // A copy of the refresh token taken before the logout is worthless now.
    const settings = validateOidcSettings({ issuer: provider.issuer, clientId: provider.clientId, audience: provider.audience });
    await expect(refreshTokens(settings, await discoverProvider(settings), refresh ?? '')).rejects.toMatchObject({ code: 'denied' });
    const who = await alpha.json<{ source: string; principal: string }>(['whoami']);
    expect(who.body).toMatchObject({ source: 'host', principal: 'host:alpha' });
    expect((await alpha.json<{ logged_out: boolean }>(['logout'])).body.logged_out).toBe(false);
  });
});
