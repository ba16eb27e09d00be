/**
 * Certificate renewal (issue: "Host certificates are renewed by the daemon before they
 * expire"): the renewal step as the daemon runs it, with the clock moved to the last weeks of
 * the certificate's life, against a real CA daemon for a joined host and locally on the CA host.
 */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHostIdentity, verifyHostCert, type HostIdentity } from '../../src/identity/host-cert.js';
import { tlsDir } from '../../src/identity/workspace-ca.js';
import { openAgentLog } from '../../src/daemon/agent-log.js';
import { loadMembership, type Membership } from '../../src/daemon/membership.js';
import { renewIfDue } from '../../src/daemon/renewal.js';
import { createMeshClient } from '../../src/transport/grpc-client.js';
import { makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

let cleanup: () => Promise<void>;
let alpha: TestHost;
let beta: TestHost;

beforeAll(async () => {
  const made = await makeWorkspace(['alpha', 'beta']);
  cleanup = made.cleanup;
  [alpha, beta] = made.hosts as [TestHost, TestHost];
}, 120_000);

afterAll(async () => {
  await cleanup();
});

async function renewAt(host: TestHost, daysBeforeExpiry: number): Promise<{ renewed: boolean; before: HostIdentity; after: HostIdentity; announced: HostIdentity[] }> {
  const before = (await loadHostIdentity(tlsDir(host.home))) as HostIdentity;
  const membership = (await loadMembership(host.home)) as Membership;
  const notAfter = verifyHostCert(before.certPem, before.caCertPem).notAfter;
  const log = await openAgentLog({ path: `${host.home}/logs/renewal-test.log` });
  const announced: HostIdentity[] = [];
  try {
    const renewed = await renewIfDue({
      home: host.home,
      membership,
      identity: () => before,
      log,
      onRenewed: (next) => announced.push(next),
      now: () => new Date(notAfter.getTime() - daysBeforeExpiry * 86_400_000),
    });
    return { renewed, before, after: (await loadHostIdentity(tlsDir(host.home))) as HostIdentity, announced };
  } finally {
    await log.close();
  }
}

describe('certificate renewal', () => {
  it('is not done while the certificate has most of its life left', async () => {
    const r = await renewAt(beta, 60);
    expect(r.renewed).toBe(false);
    expect(r.after.certPem).toBe(r.before.certPem);
  });

  it('a joined host gets a fresh certificate from the CA daemon, for a fresh key, naming itself', async () => {
    const r = await renewAt(beta, 10);
    expect(r.renewed).toBe(true);
    expect(r.announced).toHaveLength(1);
    expect(r.after.keyPem).not.toBe(r.before.keyPem);
    const old = verifyHostCert(r.before.certPem, r.before.caCertPem);
    const fresh = verifyHostCert(r.after.certPem, r.after.caCertPem);
    expect(fresh.hostName).toBe('beta');
    expect(fresh.serialNumber).not.toBe(old.serialNumber);
    expect(fresh.notAfter.getTime()).toBeGreaterThan(old.notAfter.getTime());
    // The new identity works against the CA host's real daemon.
    const client = createMeshClient({ address: alpha.address, tls: r.after, expectedHostName: 'alpha' });
    try {
      expect((await client.ping()).host_name).toBe('alpha');
    } finally {
      client.close();
    }
  });

  it('the CA host signs its own renewal', async () => {
    const r = await renewAt(alpha, 5);
    expect(r.renewed).toBe(true);
    expect(verifyHostCert(r.after.certPem, r.after.caCertPem).hostName).toBe('alpha');
    expect(r.after.keyPem).not.toBe(r.before.keyPem);
  });

  it('a restarted daemon serves with the renewed certificate', async () => {
    await mustRun(beta, ['agent', 'restart']);
    const status = await beta.json<{ listen_address: string }>(['agent', 'status']);
    const renewed = (await loadHostIdentity(tlsDir(beta.home))) as HostIdentity;
    const [host, port] = status.body.listen_address.split(':') as [string, string];
    const served = await new Promise<string>((resolveCert, reject) => {
      const socket = connect({ host, port: Number(port), rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolveCert(serial);
      });
      socket.on('error', reject);
    });
    expect(served.toLowerCase()).toBe(verifyHostCert(renewed.certPem, renewed.caCertPem).serialNumber.toLowerCase());
  });
});
