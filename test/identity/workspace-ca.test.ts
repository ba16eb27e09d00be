import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  caFingerprint,
  createWorkspaceCa,
  loadCa,
  loadCaCert,
  normalizeFingerprint,
  saveCa,
  saveCaCert,
  tlsDir,
} from '../../src/identity/workspace-ca.js';
import { createTempDir, daysAfter, issueHost, refusal, removeTempDir } from './identity-fixtures.js';

let home: string;
beforeEach(async () => {
  home = await createTempDir();
});
afterEach(async () => {
  await removeTempDir(home);
});

describe('createWorkspaceCa', () => {
  it('makes a self-signed ECDSA P-256 CA for signing host certificates only', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const ca = await createWorkspaceCa({ name: 'home-lab', now });
    const cert = new X509Certificate(ca.certPem);

    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=cmdop workspace home-lab');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
    expect(cert.subjectAltName).toBe(`URI:cmdop://workspace/${ca.workspaceId}`);
    expect(ca.workspaceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ca.name).toBe('home-lab');
    // Ten years by default.
    expect(ca.notAfter.toISOString()).toBe(daysAfter(now, 3650).toISOString());
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('puts pathLen 0 and keyCertSign + cRLSign in the certificate', async () => {
    const ca = await createWorkspaceCa({ name: 'lab', validDays: 30 });
    const der = new X509Certificate(ca.certPem).raw;
    // node:crypto does not decode these extensions, so look for their DER.
    // BasicConstraints (2.5.29.19), critical, value SEQUENCE { cA TRUE, pathLenConstraint 0 }.
    expect(der.includes(Buffer.from('0603551d130101ff040830060101ff020100', 'hex'))).toBe(true);
    // KeyUsage (2.5.29.15), critical, BIT STRING with keyCertSign and cRLSign set.
    expect(der.includes(Buffer.from('0603551d0f0101ff040403020106', 'hex'))).toBe(true);
  });

  it('gives each workspace its own id and key', async () => {
    const a = await createWorkspaceCa({ name: 'lab' });
    const b = await createWorkspaceCa({ name: 'lab' });
    expect(a.workspaceId).not.toBe(b.workspaceId);
    expect(a.fingerprint).not.toBe(b.fingerprint);
  });

  it.each(['', ' ', '-lab', 'lab-', 'a/b', 'line\nbreak', 'x'.repeat(65), 'a,CN=evil'])('refuses the workspace name %j', async (name) => {
    const error = await refusal('invalid_input', () => createWorkspaceCa({ name }));
    expect(error.message).toMatch(/workspace name/);
  });

  it.each([0, -1, 1.5, 36_501])('refuses validDays %j', async (validDays) => {
    await refusal('invalid_input', () => createWorkspaceCa({ name: 'lab', validDays }));
  });
});

describe('caFingerprint', () => {
  it('is the SHA-256 of the DER in lowercase hex, equal to what openssl prints without colons', async () => {
    const ca = await createWorkspaceCa({ name: 'lab' });
    const cert = new X509Certificate(ca.certPem);
    expect(caFingerprint(ca.certPem)).toBe(createHash('sha256').update(cert.raw).digest('hex'));
    expect(caFingerprint(ca.certPem)).toBe(ca.fingerprint);
    expect(normalizeFingerprint(cert.fingerprint256)).toBe(ca.fingerprint);
  });

  it('refuses text that is not one certificate', async () => {
    const ca = await createWorkspaceCa({ name: 'lab' });
    await refusal('invalid_input', () => caFingerprint('hello'));
    await refusal('invalid_input', () => caFingerprint(ca.certPem + ca.certPem));
  });

  it.each(['', 'abc', 'g'.repeat(64), 'a'.repeat(63)])('normalizeFingerprint refuses %j', async (fingerprint) => {
    await refusal('invalid_input', () => normalizeFingerprint(fingerprint));
  });
});

describe('saveCa / loadCa', () => {
  it('round-trips the CA with a stable fingerprint, files 0600 in a 0700 directory', async () => {
    const dir = tlsDir(home);
    const ca = await createWorkspaceCa({ name: 'lab' });
    await saveCa(dir, ca);

    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, CA_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, CA_CERT_FILE))).mode & 0o777).toBe(0o600);

    const loaded = await loadCa(dir);
    expect(loaded).toEqual(ca);
    expect(loaded?.fingerprint).toBe(caFingerprint(await readFile(join(dir, CA_CERT_FILE), 'utf8')));
    expect(await loadCaCert(dir)).toBe(ca.certPem);
  });

  it('returns undefined when this host holds no CA', async () => {
    expect(await loadCa(tlsDir(home))).toBeUndefined();
    expect(await loadCaCert(tlsDir(home))).toBeUndefined();
  });

  it('refuses to replace an existing CA unless told to', async () => {
    const dir = tlsDir(home);
    const first = await createWorkspaceCa({ name: 'lab' });
    const second = await createWorkspaceCa({ name: 'lab' });
    await saveCa(dir, first);
    const error = await refusal('config', () => saveCa(dir, second));
    expect(error.message).toMatch(/already exists/);
    expect((await loadCa(dir))?.fingerprint).toBe(first.fingerprint);
    await saveCa(dir, second, { overwrite: true });
    expect((await loadCa(dir))?.fingerprint).toBe(second.fingerprint);
  });

  it('refuses a CA key others can read', async () => {
    const dir = tlsDir(home);
    await saveCa(dir, await createWorkspaceCa({ name: 'lab' }));
    await chmod(join(dir, CA_KEY_FILE), 0o644);
    const error = await refusal('config', () => loadCa(dir));
    expect(error.message).toMatch(/mode 0644/);
  });

  it('refuses a certificate without its key, and a key of another CA, without quoting the key', async () => {
    const dir = tlsDir(home);
    const ca = await createWorkspaceCa({ name: 'lab' });
    const other = await createWorkspaceCa({ name: 'lab' });
    await saveCaCert(dir, ca.certPem);
    const incomplete = await refusal('config', () => loadCa(dir));
    expect(incomplete.message).toMatch(/ca\.key is missing/);

    await writeFile(join(dir, CA_KEY_FILE), other.keyPem, { mode: 0o600 });
    const mismatch = await refusal('config', () => loadCa(dir));
    expect(mismatch.message).toMatch(/does not belong/);
    expect(JSON.stringify({ m: mismatch.message, h: mismatch.hint, d: mismatch.details })).not.toContain(other.keyPem.slice(40, 80));
  });

  it('refuses a damaged key without quoting it', async () => {
    const dir = tlsDir(home);
    const ca = await createWorkspaceCa({ name: 'lab' });
    await saveCa(dir, ca);
    const damaged = ca.keyPem.replace(/[A-Za-z]{10}/, 'AAAAAAAAAA');
    await writeFile(join(dir, CA_KEY_FILE), damaged, { mode: 0o600 });
    const error = await refusal('config', () => loadCa(dir));
    expect(error.message).not.toContain('AAAAAAAAAA');
    expect(error.message).not.toMatch(/BEGIN/);
  });

  it('refuses to save a key that does not belong to the certificate', async () => {
    const ca = await createWorkspaceCa({ name: 'lab' });
    const other = await createWorkspaceCa({ name: 'lab' });
    await refusal('config', () => saveCa(tlsDir(home), { ...ca, keyPem: other.keyPem }));
    expect(await loadCa(tlsDir(home))).toBeUndefined();
  });

  it('refuses a host certificate saved as the CA certificate', async () => {
    const ca = await createWorkspaceCa({ name: 'lab' });
    const host = await issueHost(ca, 'alpha');
    const error = await refusal('invalid_input', () => saveCaCert(tlsDir(home), host.certPem));
    expect(error.message).toMatch(/not a CA certificate/);
  });
});
