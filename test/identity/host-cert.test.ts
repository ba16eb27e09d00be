import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  HOST_CERT_FILE,
  HOST_KEY_FILE,
  createHostKeyAndCsr,
  loadHostIdentity,
  needsRenewal,
  saveHostIdentity,
  signHostCsr,
  verifyHostCert,
} from '../../src/identity/host-cert.js';
import { isValidHostName, normalizeHostName } from '../../src/identity/host-name.js';
import { caSigningKey, createWorkspaceCa, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import { SIGNING_ALGORITHM, generateKeyPair, x509 } from '../../src/identity/x509.js';
import { createTempDir, daysAfter, issueHost, refusal, removeTempDir } from './identity-fixtures.js';

const NOW = new Date('2030-06-01T12:00:00Z');

let ca: WorkspaceCa;
let otherCa: WorkspaceCa;
beforeAll(async () => {
  ca = await createWorkspaceCa({ name: 'lab', now: daysAfter(NOW, -10) });
  // Same workspace name, so the issuer names match and only the signature tells them apart.
  otherCa = await createWorkspaceCa({ name: 'lab', now: daysAfter(NOW, -10) });
});

describe('host names', () => {
  it.each([
    ['vps-audi', 'vps-audi'],
    ['VPS-Audi', 'vps-audi'],
    ['a', 'a'],
    ['0', '0'],
    ['x'.repeat(63), 'x'.repeat(63)],
  ])('accepts %j as %j', (name, expected) => {
    expect(isValidHostName(name)).toBe(true);
    expect(normalizeHostName(name)).toBe(expected);
  });

  it.each(['', '-a', 'a-', 'a_b', 'a.b', 'a b', 'x'.repeat(64), 'héllo', '\u212A', 'a\n', '../a', 'a/b'])('refuses %j', async (name) => {
    expect(isValidHostName(name)).toBe(false);
    const error = await refusal('invalid_input', () => normalizeHostName(name));
    expect(error.message).toMatch(/is not a valid host name/);
  });
});

describe('createHostKeyAndCsr / signHostCsr / verifyHostCert', () => {
  it('issues a certificate that verifies against its CA and names the host', async () => {
    const { keyPem, csrPem } = await createHostKeyAndCsr('Alpha');
    expect(csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const certPem = await signHostCsr(ca, csrPem, { hostName: 'alpha', now: NOW });

    const verified = verifyHostCert(certPem, ca.certPem, { now: NOW });
    expect(verified.hostName).toBe('alpha');
    expect(verified.workspaceId).toBe(ca.workspaceId);
    expect(verified.notAfter.toISOString()).toBe(daysAfter(NOW, 90).toISOString());

    const cert = new X509Certificate(certPem);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=alpha');
    expect(cert.subjectAltName).toBe(`DNS:alpha, URI:cmdop://host/alpha, URI:cmdop://workspace/${ca.workspaceId}`);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(cert.checkHost('alpha')).toBe('alpha');
  });

  it('verifies the DER form a TLS socket gives', async () => {
    const host = await issueHost(ca, 'alpha', { now: NOW });
    const der = new X509Certificate(host.certPem).raw;
    expect(verifyHostCert(der, ca.certPem, { now: NOW }).hostName).toBe('alpha');
  });

  it('refuses a certificate from another workspace CA', async () => {
    const foreign = await issueHost(otherCa, 'alpha', { now: NOW });
    const error = await refusal('denied', () => verifyHostCert(foreign.certPem, ca.certPem, { now: NOW }));
    expect(error.message).toMatch(/not signed by this workspace's CA/);
  });

  it('refuses an expired certificate, and one not valid yet', async () => {
    const old = await issueHost(ca, 'alpha', { now: daysAfter(NOW, -5), validDays: 2 });
    const expired = await refusal('denied', () => verifyHostCert(old.certPem, ca.certPem, { now: NOW }));
    expect(expired.message).toMatch(/^the presented host certificate expired at 2030-05-29T12:00:00.000Z$/);

    const fresh = await issueHost(ca, 'alpha', { now: NOW });
    const early = await refusal('denied', () => verifyHostCert(fresh.certPem, ca.certPem, { now: daysAfter(NOW, -1) }));
    expect(early.message).toMatch(/not valid until/);
  });

  it('accepts a certificate from a peer whose clock is a few minutes behind', async () => {
    const fresh = await issueHost(ca, 'alpha', { now: NOW });
    expect(verifyHostCert(fresh.certPem, ca.certPem, { now: new Date(NOW.getTime() - 2 * 60_000) }).hostName).toBe('alpha');
  });

  it('refuses the CA certificate itself presented as a host certificate', async () => {
    const error = await refusal('denied', () => verifyHostCert(ca.certPem, ca.certPem, { now: NOW }));
    expect(error.message).toMatch(/is a CA certificate, not a host certificate/);
  });

  it('refuses text that is not a certificate', async () => {
    await refusal('denied', () => verifyHostCert('garbage', ca.certPem, { now: NOW }));
    await refusal('denied', () => verifyHostCert(Buffer.from('garbage'), ca.certPem, { now: NOW }));
  });

  it('refuses a certificate the CA signed without cmdop host names', async () => {
    // Signed by the right CA key, but made by hand: no SAN at all, or a SAN naming two hosts.
    const keys = await generateKeyPair();
    const caKeys = await caSigningKey(ca);
    const make = async (extensions: x509.Extension[]): Promise<string> =>
      (
        await x509.X509CertificateGenerator.create({
          subject: [{ CN: ['alpha'] }],
          issuer: new x509.X509Certificate(ca.certPem).subjectName,
          notBefore: daysAfter(NOW, -1),
          notAfter: daysAfter(NOW, 1),
          signingAlgorithm: SIGNING_ALGORITHM,
          publicKey: keys.publicKey,
          signingKey: caKeys.privateKey,
          extensions: [
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
            ...extensions,
          ],
        })
      ).toString('pem');
    const workspace = { type: 'url', value: `cmdop://workspace/${ca.workspaceId}` } as const;

    const noSan = await make([]);
    expect((await refusal('denied', () => verifyHostCert(noSan, ca.certPem, { now: NOW }))).message).toMatch(/does not name this workspace/);

    const twoHosts = await make([
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'alpha' }, { type: 'dns', value: 'beta' }, { type: 'url', value: 'cmdop://host/alpha' }, workspace]),
    ]);
    expect((await refusal('denied', () => verifyHostCert(twoHosts, ca.certPem, { now: NOW }))).message).toMatch(/does not name one host/);

    const mismatched = await make([
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'alpha' }, { type: 'url', value: 'cmdop://host/beta' }, workspace]),
    ]);
    expect((await refusal('denied', () => verifyHostCert(mismatched, ca.certPem, { now: NOW }))).message).toMatch(/does not name one host/);

    const withIp = await make([
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'alpha' }, { type: 'url', value: 'cmdop://host/alpha' }, { type: 'ip', value: '127.0.0.1' }, workspace]),
    ]);
    expect((await refusal('denied', () => verifyHostCert(withIp, ca.certPem, { now: NOW }))).message).toMatch(/does not name one host/);

    const good = await make([
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'alpha' }, { type: 'url', value: 'cmdop://host/alpha' }, workspace]),
    ]);
    expect(verifyHostCert(good, ca.certPem, { now: NOW }).hostName).toBe('alpha');
  });

  it('refuses a CSR that asks for another name than the CA host decided', async () => {
    const { csrPem } = await createHostKeyAndCsr('mallory');
    const error = await refusal('denied', () => signHostCsr(ca, csrPem, { hostName: 'alpha', now: NOW }));
    expect(error.message).toMatch(/the CA host decides the name/);
  });

  it('refuses a CSR whose CN matches but which asks for other alternative names', async () => {
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: [{ CN: ['alpha'] }],
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'alpha' }, { type: 'dns', value: 'ca-host' }])],
    });
    const error = await refusal('denied', () => signHostCsr(ca, csr.toString('pem'), { hostName: 'alpha', now: NOW }));
    expect(error.message).toMatch(/alternative names other than alpha/);
  });

  it('ignores whatever else a CSR asks for: the certificate is never a CA', async () => {
    const keys = await generateKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: [{ CN: ['alpha'] }],
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
    });
    const certPem = await signHostCsr(ca, csr.toString('pem'), { hostName: 'alpha', now: NOW });
    expect(new X509Certificate(certPem).ca).toBe(false);
  });

  it('refuses a CSR whose signature does not verify, and one that is not a CSR', async () => {
    const { csrPem } = await createHostKeyAndCsr('alpha');
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await refusal('invalid_input', () => signHostCsr(ca, tampered, { hostName: 'alpha', now: NOW }));
    await refusal('invalid_input', () => signHostCsr(ca, 'not a csr', { hostName: 'alpha', now: NOW }));
  });

  it('refuses a CSR for a key that is not ECDSA P-256', async () => {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: [{ CN: ['alpha'] }],
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    });
    const error = await refusal('invalid_input', () => signHostCsr(ca, csr.toString('pem'), { hostName: 'alpha', now: NOW }));
    expect(error.message).toMatch(/P-256/);
  });

  it.each(['', 'Bad_Name', 'a.b', '-x'])('refuses to sign for the host name %j', async (hostName) => {
    const { csrPem } = await createHostKeyAndCsr('alpha');
    await refusal('invalid_input', () => signHostCsr(ca, csrPem, { hostName, now: NOW }));
    await refusal('invalid_input', () => createHostKeyAndCsr(hostName));
  });

  it('never issues past the end of the CA, and refuses once the CA has expired', async () => {
    const shortCa = await createWorkspaceCa({ name: 'lab', now: NOW, validDays: 10 });
    const host = await issueHost(shortCa, 'alpha', { now: NOW });
    expect(verifyHostCert(host.certPem, shortCa.certPem, { now: NOW }).notAfter.toISOString()).toBe(shortCa.notAfter.toISOString());
    const { csrPem } = await createHostKeyAndCsr('alpha');
    const error = await refusal('config', () => signHostCsr(shortCa, csrPem, { hostName: 'alpha', now: daysAfter(NOW, 11) }));
    expect(error.message).toMatch(/workspace CA expired/);
  });
});

describe('needsRenewal', () => {
  it('asks for renewal once fewer than 30 days are left of a 90-day certificate', async () => {
    const host = await issueHost(ca, 'alpha', { now: NOW });
    expect(needsRenewal(host.certPem, NOW)).toBe(false);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 59))).toBe(false);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 61))).toBe(true);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 100))).toBe(true);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 79), 10)).toBe(false);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 81), 10)).toBe(true);
  });

  it('caps the threshold at a third of the lifetime, so a short-lived certificate is not renewed at once', async () => {
    const host = await issueHost(ca, 'alpha', { now: NOW, validDays: 9 });
    expect(needsRenewal(host.certPem, daysAfter(NOW, 1))).toBe(false);
    expect(needsRenewal(host.certPem, daysAfter(NOW, 7))).toBe(true);
  });

  it('refuses text that is not a certificate', async () => {
    await refusal('invalid_input', () => needsRenewal('nope', NOW));
  });
});

describe('saveHostIdentity / loadHostIdentity', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await createTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('round-trips key, certificate and CA certificate, each 0600', async () => {
    const tls = join(dir, 'tls');
    const host = await issueHost(ca, 'alpha', { now: NOW });
    const identity = { keyPem: host.keyPem, certPem: host.certPem, caCertPem: ca.certPem };
    await saveHostIdentity(tls, identity);
    for (const file of [HOST_KEY_FILE, HOST_CERT_FILE, 'ca.crt']) {
      expect((await stat(join(tls, file))).mode & 0o777).toBe(0o600);
    }
    expect(await loadHostIdentity(tls)).toEqual(identity);
    expect(await loadHostIdentity(join(dir, 'missing'))).toBeUndefined();
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const host = await issueHost(ca, 'alpha', { now: NOW });
    const other = await issueHost(ca, 'beta', { now: NOW });
    const error = await refusal('config', () => saveHostIdentity(join(dir, 'tls'), { keyPem: other.keyPem, certPem: host.certPem, caCertPem: ca.certPem }));
    expect(error.message).toMatch(/does not belong/);
  });
});
