/**
 * Host certificates (DESIGN.md §6): a joining host makes its own key and a CSR; the CA host
 * signs it with the name the CA host decided (never the name the CSR asks for); every peer
 * checks a presented certificate against the workspace CA before anything else looks at the call.
 *
 * A host certificate carries, as subject alternative names, `DNS:<host>`, `URI:cmdop://host/<host>`
 * and `URI:cmdop://workspace/<id>` (the CA's id), and is good for TLS server and client auth.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { CmdopError } from '../errors.js';
import { ensurePrivateDir } from '../config/cmdop-home.js';
import { readSecureFile, writeFileAtomic } from '../config/secure-file.js';
import { normalizeHostName } from './host-name.js';
import { CA_CERT_FILE, caSigningKey, parseCaCert, singleWorkspaceId, validateValidDays, type WorkspaceCa } from './workspace-ca.js';
import {
  CLOCK_SKEW_MS,
  HOST_URI_PREFIX,
  SIGNING_ALGORITHM,
  WORKSPACE_URI_PREFIX,
  daysToMs,
  exportPrivateKeyPem,
  generateKeyPair,
  importSigningKey,
  nameField,
  randomSerialHex,
  subjectAltNames,
  tryParseCertificate,
  x509,
} from './x509.js';

/** Default lifetime of a host certificate: 90 days, renewed by the daemon well before the end. */
export const DEFAULT_HOST_VALID_DAYS = 90;

/** Default renewal threshold: renew when fewer than this many days are left. */
export const DEFAULT_RENEWAL_THRESHOLD_DAYS = 30;

/** File name of the host private key inside the TLS directory. */
export const HOST_KEY_FILE = 'host.key';

/** File name of the host certificate inside the TLS directory. */
export const HOST_CERT_FILE = 'host.crt';

/** A host's new private key and the certificate request to send to the CA host. */
export interface HostKeyAndCsr {
  /** The host private key, PKCS#8 PEM; it never leaves the host. */
  readonly keyPem: string;
  /** The PKCS#10 request, PEM, subject `CN=<host>`. */
  readonly csrPem: string;
}

/** Options for {@link signHostCsr}. */
export interface SignHostCsrOptions {
  /** The host name the CA host decided for this host; the CSR must ask for exactly this name. */
  readonly hostName: string;
  /** Lifetime in days (default {@link DEFAULT_HOST_VALID_DAYS}); never beyond the CA's own end. */
  readonly validDays?: number;
  /** The issuing time (default: the current time). */
  readonly now?: Date;
}

/** Options for {@link verifyHostCert}. */
export interface VerifyHostCertOptions {
  /** The time to check validity at (default: the current time). */
  readonly now?: Date;
}

/** Who a verified host certificate names. */
export interface VerifiedHost {
  /** The host name (lower case), from `DNS:` and `cmdop://host/` in the certificate. */
  readonly hostName: string;
  /** The workspace id, equal to the CA's. */
  readonly workspaceId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the certificate's DER, 64 lowercase hex characters. */
  readonly fingerprint: string;
  /** The serial number, hex. */
  readonly serialNumber: string;
}

/** What a host keeps in its TLS directory to take part in the workspace. */
export interface HostIdentity {
  /** The host private key, PKCS#8 PEM. Never log it. */
  readonly keyPem: string;
  /** The host certificate, PEM. */
  readonly certPem: string;
  /** The workspace CA certificate, PEM. */
  readonly caCertPem: string;
}

/** Makes a fresh ECDSA P-256 host key and a CSR for `hostName` (lower-cased; CmdopError('invalid_input') if not a valid host name). */
export async function createHostKeyAndCsr(hostName: string): Promise<HostKeyAndCsr> {
  const name = normalizeHostName(hostName);
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [name] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }], false)],
  });
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/**
 * Signs a host CSR with the workspace CA and returns the certificate PEM. The CSR must be a
 * well-formed, self-signed ECDSA P-256 request ('invalid_input' otherwise) whose CN and any
 * requested names are exactly `hostName` ('denied' otherwise); only the public key is taken
 * from it, every name and extension comes from here.
 */
export async function signHostCsr(ca: WorkspaceCa, csrPem: string, options: SignHostCsrOptions): Promise<string> {
  const hostName = normalizeHostName(options.hostName);
  const validDays = validateValidDays(options.validDays ?? DEFAULT_HOST_VALID_DAYS, 'validDays');
  const now = options.now ?? new Date();
  const caInfo = parseCaCert(ca.certPem);
  if (now.getTime() >= caInfo.notAfter.getTime()) {
    throw new CmdopError('config', `the workspace CA expired at ${caInfo.notAfter.toISOString()}; it cannot sign host certificates`, {
      hint: 'Create a new workspace CA and join the hosts to it again.',
    });
  }
  const csr = await readCsr(csrPem);
  assertCsrNames(csr, hostName);

  const caKeys = await caSigningKey(ca);
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  // A host certificate never outlives the CA that vouches for it.
  const notAfter = new Date(Math.min(now.getTime() + daysToMs(validDays), caInfo.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [hostName] }],
    issuer: caInfo.parsed.asn.subjectName,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: csr.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'dns', value: hostName },
          { type: 'url', value: `${HOST_URI_PREFIX}${hostName}` },
          { type: 'url', value: `${WORKSPACE_URI_PREFIX}${caInfo.workspaceId}` },
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return cert.toString('pem');
}

/**
 * Checks that a certificate (PEM, or DER as `getPeerCertificate().raw` gives it) is a host
 * certificate of the workspace whose CA is `caCertPem`, valid at `now`, and returns whom it
 * names; throws CmdopError('denied') saying why not ('config' if `caCertPem` itself is damaged).
 */
export function verifyHostCert(certificate: string | Uint8Array, caCertPem: string, options: VerifyHostCertOptions = {}): VerifiedHost {
  const now = options.now ?? new Date();
  const caInfo = parseCaCert(caCertPem);
  const parsed = tryParseCertificate(certificate);
  if (parsed === undefined) throw denied('the presented host certificate is not one readable certificate');
  const details = { fingerprint: parsed.fingerprint };
  if (parsed.node.ca) {
    throw denied('the presented certificate is a CA certificate, not a host certificate', details);
  }
  if (!parsed.node.checkIssued(caInfo.parsed.node) || !parsed.node.verify(caInfo.parsed.node.publicKey)) {
    throw denied("the presented host certificate is not signed by this workspace's CA (it belongs to another workspace, or is forged)", details);
  }
  const workspaceId = singleWorkspaceId(parsed);
  if (workspaceId !== caInfo.workspaceId) {
    throw denied(`the presented host certificate does not name this workspace (${WORKSPACE_URI_PREFIX}${caInfo.workspaceId})`, details);
  }
  const { notBefore, notAfter } = parsed.asn;
  if (now.getTime() < notBefore.getTime()) {
    throw denied(`the presented host certificate is not valid until ${notBefore.toISOString()} (check the clocks of both hosts)`, details);
  }
  if (now.getTime() > notAfter.getTime()) {
    throw denied(`the presented host certificate expired at ${notAfter.toISOString()}`, { ...details, notAfter: notAfter.toISOString() });
  }
  if (now.getTime() > caInfo.notAfter.getTime()) {
    throw denied(`the workspace CA expired at ${caInfo.notAfter.toISOString()}`, details);
  }
  const hostName = certifiedHostName(parsed.asn);
  if (hostName === undefined) {
    throw denied(`the presented host certificate does not name one host consistently (CN, DNS:<host> and ${HOST_URI_PREFIX}<host>)`, details);
  }
  const usage = parsed.asn.getExtension(x509.ExtendedKeyUsageExtension);
  const usages: readonly unknown[] = usage?.usages ?? [];
  if (!usages.includes(x509.ExtendedKeyUsage.serverAuth) || !usages.includes(x509.ExtendedKeyUsage.clientAuth)) {
    throw denied('the presented host certificate is not issued for TLS between hosts (extended key usage)', details);
  }
  return { hostName, workspaceId, notBefore, notAfter, fingerprint: parsed.fingerprint, serialNumber: parsed.asn.serialNumber };
}

/**
 * True when the certificate should be renewed at `now`: fewer than `thresholdDays` left, or
 * fewer than a third of its lifetime for certificates shorter-lived than three thresholds.
 */
export function needsRenewal(certPem: string, now: Date, thresholdDays = DEFAULT_RENEWAL_THRESHOLD_DAYS): boolean {
  const parsed = tryParseCertificate(certPem);
  if (parsed === undefined) {
    throw new CmdopError('invalid_input', 'the host certificate to check for renewal is not one readable PEM certificate');
  }
  const { notBefore, notAfter } = parsed.asn;
  const lifetime = notAfter.getTime() - notBefore.getTime();
  // A third of the lifetime caps the threshold, so a short-lived certificate is not renewed at once, forever.
  const threshold = Math.min(daysToMs(thresholdDays), lifetime / 3);
  return notAfter.getTime() - now.getTime() < threshold;
}

/**
 * Writes `host.key`, `host.crt` and `ca.crt` into `dir` (created 0700 if needed), each
 * atomically with mode 0600, after checking the key belongs to the certificate.
 */
export async function saveHostIdentity(dir: string, identity: HostIdentity): Promise<void> {
  assertHostKeyMatches(identity.certPem, identity.keyPem);
  parseCaCert(identity.caCertPem, 'invalid_input');
  await ensurePrivateDir(dir);
  await writeFileAtomic(join(dir, CA_CERT_FILE), identity.caCertPem, 0o600);
  await writeFileAtomic(join(dir, HOST_KEY_FILE), identity.keyPem, 0o600);
  await writeFileAtomic(join(dir, HOST_CERT_FILE), identity.certPem, 0o600);
}

/**
 * Reads this host's key, certificate and CA certificate from `dir`; undefined when none exists
 * (not joined yet), CmdopError('config') when some are missing or the key does not match.
 * Validity in time is not checked here: use {@link verifyHostCert} and {@link needsRenewal}.
 */
export async function loadHostIdentity(dir: string): Promise<HostIdentity | undefined> {
  const paths = { keyPem: join(dir, HOST_KEY_FILE), certPem: join(dir, HOST_CERT_FILE), caCertPem: join(dir, CA_CERT_FILE) };
  const keyPem = await readSecureFile(paths.keyPem);
  const certPem = await readSecureFile(paths.certPem);
  const caCertPem = await readSecureFile(paths.caCertPem);
  if (keyPem === undefined && certPem === undefined) return undefined;
  if (keyPem === undefined || certPem === undefined || caCertPem === undefined) {
    const missing = keyPem === undefined ? paths.keyPem : certPem === undefined ? paths.certPem : paths.caCertPem;
    throw new CmdopError('config', `this host's identity in ${dir} is incomplete: ${missing} is missing`, {
      hint: 'Join the workspace again with `cmdop join`.',
      details: { path: missing },
    });
  }
  parseCaCert(caCertPem);
  assertHostKeyMatches(certPem, keyPem);
  await importSigningKey(keyPem, 'the host key');
  return { keyPem, certPem, caCertPem };
}

async function readCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    if (!csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw new Error('no PEM block');
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (error) {
    throw new CmdopError('invalid_input', 'the certificate request is not a readable PEM CSR', {
      cause: error,
      hint: 'Send the request made by `cmdop join` (-----BEGIN CERTIFICATE REQUEST-----).',
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw new CmdopError('invalid_input', 'the certificate request carries an unreadable public key', { cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CmdopError('invalid_input', 'the certificate request is not for an ECDSA P-256 key, the only kind cmdop certifies');
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) {
    throw new CmdopError('invalid_input', 'the certificate request is not signed by its own key (damaged or forged)');
  }
  return csr;
}

function assertCsrNames(csr: x509.Pkcs10CertificateRequest, hostName: string): void {
  const commonNames = nameField(csr.subjectName, 'CN');
  const asked = commonNames.length === 1 ? commonNames[0]?.toLowerCase() : undefined;
  if (asked !== hostName) {
    throw new CmdopError('denied', `the certificate request asks for a name other than ${hostName}; the CA host decides the name, and this request does not match it`, {
      hint: `Make the request for ${hostName}, or join with --name ${hostName}.`,
      details: { hostName },
    });
  }
  const names = subjectAltNames(csr.extensions);
  const allowedUri = `${HOST_URI_PREFIX}${hostName}`;
  const stray =
    names.other.length > 0 ||
    names.dns.some((dns) => dns.toLowerCase() !== hostName) ||
    names.uri.some((uri) => uri.toLowerCase() !== allowedUri);
  if (stray) {
    throw new CmdopError('denied', `the certificate request asks for alternative names other than ${hostName}; the CA host decides the name`, {
      hint: `Make the request for ${hostName} only.`,
      details: { hostName },
    });
  }
}

/** The host name a certificate names consistently in CN, DNS SAN and host URI SAN, or undefined. */
function certifiedHostName(cert: x509.X509Certificate): string | undefined {
  const names = subjectAltNames(cert.extensions);
  const dns = names.dns[0];
  if (names.dns.length !== 1 || dns === undefined || names.other.length > 0) return undefined;
  let hostName: string;
  try {
    hostName = normalizeHostName(dns);
  } catch {
    return undefined;
  }
  const hostUris = names.uri.filter((uri) => uri.startsWith(HOST_URI_PREFIX));
  if (hostUris.length !== 1 || hostUris[0] !== `${HOST_URI_PREFIX}${hostName}`) return undefined;
  if (names.uri.some((uri) => !uri.startsWith(HOST_URI_PREFIX) && !uri.startsWith(WORKSPACE_URI_PREFIX))) return undefined;
  const commonNames = nameField(cert.subjectName, 'CN');
  if (commonNames.length !== 1 || commonNames[0] !== hostName) return undefined;
  return hostName;
}

function assertHostKeyMatches(certPem: string, keyPem: string): void {
  const parsed = tryParseCertificate(certPem);
  if (parsed === undefined) throw new CmdopError('config', 'the host certificate is not one readable PEM certificate');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new CmdopError('config', 'the host key is not a readable private key', { cause: error });
  }
  if (!parsed.node.checkPrivateKey(key)) {
    throw new CmdopError('config', 'the host key does not belong to the host certificate', {
      hint: 'host.key and host.crt do not match; join the workspace again with `cmdop join`.',
    });
  }
}

function denied(message: string, details: Readonly<Record<string, unknown>> = {}): CmdopError {
  return new CmdopError('denied', message, {
    hint: 'Only hosts joined to this workspace (cmdop join) with a current certificate can call it.',
    details,
  });
}
