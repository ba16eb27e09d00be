/**
 * The workspace CA (DESIGN.md §6): a self-signed ECDSA P-256 certificate authority made by
 * `cmdop workspace init` on the first host. Every host certificate it signs carries the
 * workspace id, so a peer can tell a member of its own workspace from a member of another.
 *
 * The fingerprint of a CA is the SHA-256 of its certificate's DER bytes as 64 lowercase hex
 * characters, no colons: it travels inside join tokens and is compared byte for byte.
 * {@link normalizeFingerprint} also accepts the `AB:CD:...` form that `openssl x509
 * -fingerprint -sha256` prints, so a fingerprint pasted from there compares equal.
 */
import { createPrivateKey, type webcrypto } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { CmdopError, systemErrorCode } from '../errors.js';
import { ensurePrivateDir } from '../config/cmdop-home.js';
import { readSecureFile, writeFileAtomic } from '../config/secure-file.js';
import {
  CLOCK_SKEW_MS,
  SIGNING_ALGORITHM,
  WORKSPACE_ID_PATTERN,
  WORKSPACE_URI_PREFIX,
  daysToMs,
  exportPrivateKeyPem,
  generateKeyPair,
  importSigningKey,
  nameField,
  newWorkspaceId,
  randomSerialHex,
  subjectAltNames,
  tryParseCertificate,
  x509,
  type ParsedCertificate,
} from './x509.js';

/** The common name of a workspace CA is this prefix followed by the workspace name. */
export const CA_COMMON_NAME_PREFIX = 'cmdop workspace ';

/** Default lifetime of a workspace CA: ten years. */
export const DEFAULT_CA_VALID_DAYS = 3650;

/** File name of the CA certificate inside the TLS directory. */
export const CA_CERT_FILE = 'ca.crt';

/** File name of the CA private key inside the TLS directory (CA hosts only). */
export const CA_KEY_FILE = 'ca.key';

const MAX_VALID_DAYS = 36_500;
const WORKSPACE_NAME = /^[\p{L}\p{N}](?:[\p{L}\p{N} ._-]{0,62}[\p{L}\p{N}])?$/u;

/** A workspace CA with its private key, as held by the host that signs certificates. */
export interface WorkspaceCa {
  /** The workspace name given at creation (the CA's common name without its prefix). */
  readonly name: string;
  /** The workspace id: 32 lowercase hex characters, in the CA's URI SAN `cmdop://workspace/<id>`. */
  readonly workspaceId: string;
  /** The CA certificate, PEM. */
  readonly certPem: string;
  /** The CA private key, PKCS#8 PEM. Never log it. */
  readonly keyPem: string;
  /** SHA-256 of the certificate's DER, 64 lowercase hex characters. */
  readonly fingerprint: string;
  /** When the CA certificate expires. */
  readonly notAfter: Date;
}

/** Options for {@link createWorkspaceCa}. */
export interface CreateWorkspaceCaOptions {
  /** The workspace name: letters, digits, space, `.`, `_`, `-`; 1 to 64 characters. */
  readonly name: string;
  /** The issuing time (default: the current time). */
  readonly now?: Date;
  /** Lifetime in days (default {@link DEFAULT_CA_VALID_DAYS}). */
  readonly validDays?: number;
}

/** What a CA certificate says about its workspace, once checked to be a cmdop workspace CA. */
export interface CaCertificateInfo {
  readonly name: string;
  readonly workspaceId: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The parsed certificate, for signature checks. */
  readonly parsed: ParsedCertificate;
}

/** Creates a new workspace CA: an ECDSA P-256 key and a self-signed CA certificate naming a fresh workspace id. */
export async function createWorkspaceCa(options: CreateWorkspaceCaOptions): Promise<WorkspaceCa> {
  const name = validateWorkspaceName(options.name);
  const validDays = validateValidDays(options.validDays ?? DEFAULT_CA_VALID_DAYS, 'validDays');
  const now = options.now ?? new Date();
  const workspaceId = newWorkspaceId();
  const keys = await generateKeyPair();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(now.getTime() + daysToMs(validDays));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [`${CA_COMMON_NAME_PREFIX}${name}`] }],
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      // pathLen 0: the CA signs host certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `${WORKSPACE_URI_PREFIX}${workspaceId}` }], false),
    ],
  });
  const certPem = cert.toString('pem');
  const info = parseCaCert(certPem);
  return {
    name,
    workspaceId,
    certPem,
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    fingerprint: info.fingerprint,
    notAfter: info.notAfter,
  };
}

/** The fingerprint of a certificate: SHA-256 of its DER bytes, 64 lowercase hex characters. */
export function caFingerprint(certPem: string): string {
  const parsed = tryParseCertificate(certPem);
  if (parsed === undefined) {
    throw new CmdopError('invalid_input', 'the text given as a CA certificate is not one PEM certificate', {
      hint: 'Pass the content of ca.crt (one -----BEGIN CERTIFICATE----- block).',
    });
  }
  return parsed.fingerprint;
}

/**
 * Brings a SHA-256 fingerprint to the canonical form (64 lowercase hex characters), accepting
 * colons and upper case; throws CmdopError('invalid_input') for anything else.
 */
export function normalizeFingerprint(fingerprint: string): string {
  const canonical = fingerprint.trim().replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(canonical)) {
    throw new CmdopError('invalid_input', 'a CA fingerprint is the SHA-256 of the certificate: 64 hex characters, with or without colons', {
      hint: 'Copy the fingerprint again from `cmdop workspace invite` on the CA host.',
    });
  }
  return canonical;
}

/**
 * Parses and checks a workspace CA certificate (a CA, self-issued, with one workspace id URI);
 * throws CmdopError with `code` (default 'config') saying what is wrong.
 */
export function parseCaCert(certPem: string, code: 'config' | 'denied' | 'invalid_input' = 'config'): CaCertificateInfo {
  const parsed = tryParseCertificate(certPem);
  if (parsed === undefined) {
    throw new CmdopError(code, 'the workspace CA certificate is not one readable PEM certificate', {
      hint: 'Restore ca.crt from the CA host (cmdop keeps it in CMDOP_HOME/tls/).',
    });
  }
  const notCa = (reason: string): CmdopError =>
    new CmdopError(code, `the certificate given as the workspace CA is not a cmdop workspace CA: ${reason}`, {
      hint: 'Use the ca.crt made by `cmdop workspace init`.',
      details: { fingerprint: parsed.fingerprint },
    });
  if (!parsed.node.ca) throw notCa('it is not a CA certificate');
  if (!parsed.node.checkIssued(parsed.node) || !parsed.node.verify(parsed.node.publicKey)) throw notCa('it is not self-signed');
  const commonNames = nameField(parsed.asn.subjectName, 'CN');
  const commonName = commonNames[0];
  if (commonNames.length !== 1 || commonName === undefined || !commonName.startsWith(CA_COMMON_NAME_PREFIX)) {
    throw notCa(`its subject is not "CN=${CA_COMMON_NAME_PREFIX}<name>"`);
  }
  const workspaceId = singleWorkspaceId(parsed);
  if (workspaceId === undefined) throw notCa(`it does not name exactly one workspace (${WORKSPACE_URI_PREFIX}<id>)`);
  return {
    name: commonName.slice(CA_COMMON_NAME_PREFIX.length),
    workspaceId,
    fingerprint: parsed.fingerprint,
    notBefore: parsed.asn.notBefore,
    notAfter: parsed.asn.notAfter,
    parsed,
  };
}

/** The workspace id a certificate names in its URI SAN, or undefined unless there is exactly one well-formed one. */
export function singleWorkspaceId(parsed: ParsedCertificate): string | undefined {
  const ids = subjectAltNames(parsed.asn.extensions)
    .uri.filter((uri) => uri.startsWith(WORKSPACE_URI_PREFIX))
    .map((uri) => uri.slice(WORKSPACE_URI_PREFIX.length));
  const id = ids[0];
  return ids.length === 1 && id !== undefined && WORKSPACE_ID_PATTERN.test(id) ? id : undefined;
}

/** The directory holding TLS material inside a cmdop home (`CMDOP_HOME/tls`, mode 0700, files 0600). */
export function tlsDir(home: string): string {
  return join(home, 'tls');
}

/** Options for {@link saveCa}. */
export interface SaveCaOptions {
  /** Replace an existing CA (default false: refuse, since every host certificate depends on it). */
  readonly overwrite?: boolean;
}

/**
 * Writes `ca.key` and `ca.crt` into `dir` (created 0700 if needed), each atomically with mode
 * 0600; refuses to replace an existing CA unless `overwrite` is set.
 */
export async function saveCa(dir: string, ca: WorkspaceCa, options: SaveCaOptions = {}): Promise<void> {
  // Check the pair before writing, so a mismatched key never lands on disk.
  await assertKeyMatches(ca.certPem, ca.keyPem);
  await ensurePrivateDir(dir);
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (options.overwrite !== true) {
    for (const path of [keyPath, certPath]) {
      if (await exists(path)) {
        throw new CmdopError('config', `a workspace CA already exists here (${path})`, {
          hint: 'Replacing it would cut off every host it signed; move the tls directory away first if you really mean to start a new workspace.',
          details: { path },
        });
      }
    }
  }
  // Key first: a crash in between leaves a key without a certificate, which loadCa reports.
  await writeFileAtomic(keyPath, ca.keyPem, 0o600);
  await writeFileAtomic(certPath, ca.certPem, 0o600);
}

/**
 * Loads the CA with its key from `dir`; undefined when neither file exists (this host is not a
 * CA host), CmdopError('config') when only one does, either is damaged, or they do not match.
 */
export async function loadCa(dir: string): Promise<WorkspaceCa | undefined> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const keyPem = await readSecureFile(keyPath);
  const certPem = await readSecureFile(certPath);
  if (keyPem === undefined && certPem === undefined) return undefined;
  if (keyPem === undefined || certPem === undefined) {
    const missing = keyPem === undefined ? keyPath : certPath;
    throw new CmdopError('config', `the workspace CA in ${dir} is incomplete: ${missing} is missing`, {
      hint: keyPem === undefined ? 'This host holds the CA certificate only, so it cannot sign; run the command on the CA host.' : 'Restore ca.crt from a backup.',
      details: { path: missing },
    });
  }
  const info = parseCaCert(certPem);
  await assertKeyMatches(certPem, keyPem);
  return { name: info.name, workspaceId: info.workspaceId, certPem, keyPem, fingerprint: info.fingerprint, notAfter: info.notAfter };
}

/** Writes only the CA certificate (what a joined host keeps), atomically with mode 0600. */
export async function saveCaCert(dir: string, certPem: string): Promise<void> {
  parseCaCert(certPem, 'invalid_input');
  await ensurePrivateDir(dir);
  await writeFileAtomic(join(dir, CA_CERT_FILE), certPem, 0o600);
}

/** Reads the CA certificate from `dir` (undefined when missing), checked to be a workspace CA. */
export async function loadCaCert(dir: string): Promise<string | undefined> {
  const certPem = await readSecureFile(join(dir, CA_CERT_FILE));
  if (certPem === undefined) return undefined;
  parseCaCert(certPem);
  return certPem;
}

/** Imports the CA's signing key, checked to belong to its certificate. */
export async function caSigningKey(ca: WorkspaceCa): Promise<webcrypto.CryptoKeyPair> {
  return assertKeyMatches(ca.certPem, ca.keyPem);
}

/** Imports `keyPem`, throwing CmdopError('config') unless it is the private key of `certPem`; never quotes the key. */
async function assertKeyMatches(certPem: string, keyPem: string): Promise<webcrypto.CryptoKeyPair> {
  const parsed = tryParseCertificate(certPem);
  if (parsed === undefined) {
    throw new CmdopError('config', 'the workspace CA certificate is not one readable PEM certificate');
  }
  // importSigningKey refuses a key that is not ECDSA P-256, with a message that names no secret.
  const keys = await importSigningKey(keyPem, 'the workspace CA key');
  if (!parsed.node.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new CmdopError('config', 'the workspace CA key does not belong to the CA certificate', {
      hint: 'ca.key and ca.crt come from different workspaces; restore the matching pair from a backup.',
    });
  }
  return keys;
}

function validateWorkspaceName(name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (!WORKSPACE_NAME.test(trimmed)) {
    throw new CmdopError('invalid_input', 'a workspace name is 1 to 64 letters, digits, spaces, ".", "_" or "-", starting and ending with a letter or digit', {
      hint: 'For example: cmdop workspace init --name home-lab',
    });
  }
  return trimmed;
}

/** Checks a lifetime in days: a positive whole number of at most 100 years. */
export function validateValidDays(days: number, what: string): number {
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALID_DAYS) {
    throw new CmdopError('invalid_input', `${what} must be a whole number of days from 1 to ${MAX_VALID_DAYS}`, { details: { [what]: days } });
  }
  return days;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return false;
    throw CmdopError.from(error, 'config');
  }
}
