/**
 * The one module that imports `@peculiar/x509` (certificate and CSR generation on WebCrypto),
 * plus the key, PEM and naming helpers the identity layer shares. The Reflect shim must be
 * evaluated before the library, which is why it is the first import here.
 */
import './reflect-shim.js';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { CmdopError } from '../errors.js';

export { x509 };

x509.cryptoProvider.set(webcrypto);

/** The key algorithm of every cmdop key: ECDSA on NIST P-256. */
export const EC_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** The signature algorithm of every cmdop certificate and CSR: ECDSA with SHA-256. */
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** URI SAN prefix naming the workspace a certificate belongs to (`cmdop://workspace/<id>`). */
export const WORKSPACE_URI_PREFIX = 'cmdop://workspace/';

/** URI SAN prefix naming the host a certificate was issued to (`cmdop://host/<name>`). */
export const HOST_URI_PREFIX = 'cmdop://host/';

/** Workspace ids are 32 lowercase hex characters (128 random bits). */
export const WORKSPACE_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Certificates start this long before "now" so a peer whose clock is a little behind accepts them. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Converts a number of days to milliseconds. */
export function daysToMs(days: number): number {
  return days * DAY_MS;
}

/** Generates a fresh, extractable ECDSA P-256 key pair. */
export async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
}

/** Exports a private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form node:tls reads. */
export async function exportPrivateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return toPem('PRIVATE KEY', new Uint8Array(der));
}

/**
 * Reads an ECDSA P-256 private key PEM (PKCS#8 or SEC1) into a non-extractable signing key
 * and its public half; anything else is refused with a 'config' error that never quotes the key.
 */
export async function importSigningKey(keyPem: string, what: string): Promise<webcrypto.CryptoKeyPair> {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (error) {
    throw new CmdopError('config', `${what} is not a readable private key`, {
      cause: error,
      hint: 'The file is damaged or is not a PEM private key; restore it from a backup or create the identity again.',
    });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CmdopError('config', `${what} is not an ECDSA P-256 key`, {
      hint: 'cmdop keys are ECDSA P-256; create the identity again with cmdop.',
    });
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC_KEY_ALGORITHM, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', spki, EC_KEY_ALGORITHM, true, ['verify']);
  return { privateKey, publicKey };
}

/** Wraps DER bytes as PEM with 64-character lines. */
export function toPem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** A random positive 128-bit certificate serial number as hex (RFC 5280: at most 20 octets, positive). */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // Clear the top bit so the DER INTEGER is positive, and set the next so it never shrinks.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** A fresh workspace id: 128 random bits as 32 lowercase hex characters. */
export function newWorkspaceId(): string {
  return randomBytes(16).toString('hex');
}

/** SHA-256 of bytes as 64 lowercase hex characters. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A certificate parsed twice: by OpenSSL (signatures, key checks) and structurally (names, extensions). */
export interface ParsedCertificate {
  /** Node's OpenSSL-backed view: `verify`, `checkIssued`, `checkPrivateKey`, `ca`. */
  readonly node: X509Certificate;
  /** The structural view: names, dates and typed extensions. */
  readonly asn: x509.X509Certificate;
  /** The DER bytes. */
  readonly der: Buffer;
  /** SHA-256 of the DER, 64 lowercase hex characters. */
  readonly fingerprint: string;
}

const PEM_CERT_BEGIN = '-----BEGIN CERTIFICATE-----';

/**
 * Parses exactly one certificate, PEM text or DER bytes (as `getPeerCertificate().raw` gives),
 * or returns undefined when it is not one (no PEM block, several, or bytes that do not decode);
 * callers choose the error.
 */
export function tryParseCertificate(certificate: string | Uint8Array): ParsedCertificate | undefined {
  if (typeof certificate === 'string' && certificate.split(PEM_CERT_BEGIN).length !== 2) return undefined;
  try {
    const node = new X509Certificate(certificate);
    const der = node.raw;
    const asn = new x509.X509Certificate(der);
    return { node, asn, der, fingerprint: sha256Hex(der) };
  } catch {
    return undefined;
  }
}

/** The subject alternative names of a certificate, by kind. */
export interface SubjectAltNames {
  readonly dns: readonly string[];
  readonly uri: readonly string[];
  /** Names of any other kind (IP, email, directory name, ...); cmdop certificates have none. */
  readonly other: readonly string[];
}

/** Reads the subject alternative names of a certificate or CSR extension list; none when absent. */
export function subjectAltNames(extensions: readonly x509.Extension[]): SubjectAltNames {
  const dns: string[] = [];
  const uri: string[] = [];
  const other: string[] = [];
  for (const extension of extensions) {
    if (!(extension instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const name of extension.names.items) {
      if (name.type === 'dns') dns.push(name.value);
      else if (name.type === 'url') uri.push(name.value);
      else other.push(`${name.type}:${name.value}`);
    }
  }
  return { dns, uri, other };
}

/** The values of one attribute (such as `CN`) of a distinguished name. */
export function nameField(name: x509.Name, field: string): readonly string[] {
  return name.getField(field);
}
