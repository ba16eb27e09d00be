/**
 * Evicting a host (`cmdop workspace revoke HOST` on the CA host), end to end with real daemons:
 * the CA host refuses the revoked host at once, the other hosts within a few announce intervals,
 * a restarted host keeps refusing it, its announce and renewal are refused, it drops out of every
 * roster, and its name can never join again. Refusals are audited as identity denials.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokedPath } from '../../src/daemon/revoked-names.js';
import { createHostKeyAndCsr, loadHostIdentity, type HostIdentity } from '../../src/identity/host-cert.js';
import { tlsDir } from '../../src/identity/workspace-ca.js';
import { createMeshClient } from '../../src/transport/grpc-client.js';
import { eventually, makeHost, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

let cleanup: () => Promise<void>;
let root: string;
let alpha: TestHost;
let beta: TestHost;
let gamma: TestHost;

interface PeerRow {
  name: string;
  online: boolean;
}

beforeAll(async () => {
  const made = await makeWorkspace(['alpha', 'beta', 'gamma'], { announceIntervalSeconds: 1, ips: ['127.0.0.31', '127.0.0.32', '127.0.0.33'] });
  cleanup = made.cleanup;
  root = made.root;
  [alpha, beta, gamma] = made.hosts as [TestHost, TestHost, TestHost];
  await mustRun(gamma, ['permissions', 'allow', 'execute_command(echo *)']);
}, 120_000);

afterAll(async () => {
  await cleanup();
});

function identityDenials(host: TestHost, caller: string): Record<string, unknown>[] {
  return host.audit().filter((l) => l.source === 'identity' && l.decision === 'deny' && l.hostname === caller);
}

describe('workspace revoke', () => {
  it('refuses on a host that is not the CA host (exit 6), the CA host itself (exit 2) and a name never issued (exit 4)', async () => {
    expect((await gamma.run(['workspace', 'revoke', 'beta'])).code).toBe(6);
    const self = await alpha.run(['workspace', 'revoke', 'alpha']);
    expect(self.code, self.stderr).toBe(2);
    expect(self.stderr).toMatch(/CA host/);
    const unknown = await alpha.json<{ error: { code: string } }>(['workspace', 'revoke', 'nobody']);
    expect(unknown.code).toBe(4);
    expect(unknown.body).toMatchObject({ error: { code: 'not_found' } });
  });

  it('evicts beta: the CA host refuses it at once, gamma within seconds, and both audit it', async () => {
    const before = await beta.run(['connect', 'exec', 'gamma', '--', 'echo before']);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toBe('before\n');

    const revoked = await alpha.json<{ host: string; newly_revoked: boolean; removed_from_roster: boolean }>(['workspace', 'revoke', 'beta']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.body).toMatchObject({ host: 'beta', newly_revoked: true, removed_from_roster: true });
    expect(statSync(revokedPath(alpha.home)).mode & 0o777).toBe(0o600);

    const atCa = await beta.run(['connect', 'exec', 'alpha', '--', 'echo x']);
    expect(atCa.code, atCa.stderr).toBe(3);
    expect(atCa.stderr).toMatch(/beta was revoked/);
    expect(identityDenials(alpha, 'beta').find((l) => l.tool === 'execute_command')).toMatchObject({ user: 'host:beta', reason: expect.stringMatching(/^refused before the gate/) as unknown });

    const started = Date.now();
    await eventually(
      'gamma to refuse beta',
      async () => {
        const r = await beta.run(['connect', 'exec', 'gamma', '--', 'echo after']);
        return r.code === 3 ? r : undefined;
      },
      10_000,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(identityDenials(gamma, 'beta').find((l) => l.tool === 'execute_command')).toMatchObject({ user: 'host:beta' });
    // The gate never saw the refused call: no line of gamma's names beta's command after the revocation.
    expect(gamma.audit().filter((l) => l.hostname === 'beta' && l.source !== 'identity' && String(l.target).includes('after'))).toEqual([]);

    // A second revocation changes nothing.
    const again = await alpha.json<{ newly_revoked: boolean }>(['workspace', 'revoke', 'beta']);
    expect(again.body.newly_revoked).toBe(false);
  }, 60_000);

  it("refuses beta's announce, so beta sees nobody online, and leaves beta out of every roster", async () => {
    await eventually('beta to warn that its announce is refused', () => {
      const log = readFileSync(join(beta.home, 'logs', 'agent.log'), 'utf8');
      return Promise.resolve(/could not announce to the CA host.*revoked/.test(log) ? true : undefined);
    });
    await eventually('beta to see nobody online', async () => {
      const list = await beta.json<{ peers: PeerRow[] }>(['peers', 'list']);
      return list.body.peers.filter((p) => p.name !== 'beta').every((p) => !p.online) ? true : undefined;
    });
    for (const host of [alpha, gamma]) {
      await eventually(`${host.name} to list no beta`, async () => {
        const list = await host.json<{ peers: PeerRow[] }>(['peers', 'list']);
        return list.body.peers.some((p) => p.name === 'beta') ? undefined : true;
      });
    }
    const roster = readFileSync(join(alpha.home, 'peers.json'), 'utf8');
    expect(roster).not.toMatch(/"beta"/);
  }, 60_000);

  it('the CA host refuses to renew beta\'s certificate or tell it the roster: UNAUTHENTICATED, denied', async () => {
    const identity = (await loadHostIdentity(tlsDir(beta.home))) as HostIdentity;
    const client = createMeshClient({ address: alpha.address, tls: identity, expectedHostName: 'alpha' });
    try {
      const { csrPem } = await createHostKeyAndCsr('beta');
      await expect(client.renew({ csr_pem: csrPem })).rejects.toMatchObject({ code: 'denied', message: expect.stringMatching(/beta was revoked/) as unknown, details: { grpc_status: 'UNAUTHENTICATED' } });
      await expect(client.roster()).rejects.toMatchObject({ code: 'denied' });
    } finally {
      client.close();
    }
    expect(identityDenials(alpha, 'beta').map((l) => l.tool)).toEqual(expect.arrayContaining(['renew', 'roster']));
  }, 60_000);

  it('a revoked name can never join again', async () => {
    const invite = await alpha.json<{ token: string }>(['workspace', 'invite', '--ttl', '10m']);
    const newcomer = makeHost('beta', '127.0.0.34', join(root, 'again'));
    const r = await newcomer.run(['join', invite.body.token, '--server', alpha.address, '--name', 'beta']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/already taken/);
  }, 60_000);

  it('a restarted gamma still refuses beta, before it has heard from the CA host', async () => {
    await alpha.stop();
    await gamma.stop();
    await gamma.start();
    const r = await beta.run(['connect', 'exec', 'gamma', '--', 'echo restarted']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/beta was revoked/);
  }, 60_000);
});
