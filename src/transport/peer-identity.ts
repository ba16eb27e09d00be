/**
 * Who is calling, from the verified TLS peer certificate and nothing else (DESIGN.md §4.5, §6):
 * no metadata, no request field, no address is evidence of identity. The server's handshake
 * asks for a client certificate but lets a client without one (or with a foreign one) finish it,
 * because a joining host has none yet; so this check is THE authentication of every RPC except
 * Join. grpc-js reports a peer certificate only when OpenSSL verified its chain against the
 * workspace CA (a foreign or expired one arrives as none); this check repeats the verification
 * with the cmdop rules (workspace id, validity at the injected clock, host name, key usage).
 */
import { createHash } from 'node:crypto';
import { CmdopError } from '../errors.js';
import { parseCaCert } from '../identity/workspace-ca.js';
import { verifyHostCert } from '../identity/host-cert.js';
import type { RemoteCaller } from './mesh-handler.js';

/** The parts of grpc-js's `AuthContext` this check reads. */
export interface PeerAuthContext {
  readonly transportSecurityType?: string | undefined;
  /** The peer certificate as node:tls reports it; only its DER bytes (`raw`) are read. */
  readonly sslPeerCertificate?: { readonly raw?: Uint8Array | undefined } | undefined;
}

/** The principal string of a host: `host:<name>`. */
export function hostPrincipal(hostName: string): string {
  return `host:${hostName}`;
}

/**
 * Returns the caller named by the peer's verified certificate, or throws CmdopError('denied')
 * with details `stage: 'authentication'` (sent as UNAUTHENTICATED) when there is none or it
 * does not verify against `caCertPem` at `now`.
 */
export function authenticatePeer(auth: PeerAuthContext | null | undefined, caCertPem: string, now: Date): RemoteCaller {
  const raw = auth?.transportSecurityType === 'ssl' ? auth.sslPeerCertificate?.raw : undefined;
  if (raw === undefined || raw.length === 0) {
    throw unauthenticated('the call came without a verified client certificate of this workspace');
  }
  const key = `${caKey(caCertPem)}:${createHash('sha256').update(raw).digest('hex')}`;
  const cached = verified.get(key);
  // The signature, workspace and names of a certificate do not change; only time can end it.
  if (cached !== undefined && now.getTime() >= cached.notBefore && now.getTime() <= cached.notAfter) {
    return Object.freeze({ kind: 'remote', host: cached.hostName, principal: hostPrincipal(cached.hostName), certificate: cached.fingerprint });
  }
  verified.delete(key);
  let hostName: string;
  let fingerprint: string;
  try {
    const host = verifyHostCert(raw, caCertPem, { now });
    ({ hostName, fingerprint } = host);
    remember(key, { hostName, fingerprint, notBefore: host.notBefore.getTime(), notAfter: Math.min(host.notAfter.getTime(), caNotAfter(caCertPem)) });
  } catch (error) {
    const why = error instanceof CmdopError ? error.message : 'the certificate could not be checked';
    throw unauthenticated(why, error);
  }
  return Object.freeze({ kind: 'remote', host: hostName, principal: hostPrincipal(hostName), certificate: fingerprint });
}

interface VerifiedEntry {
  readonly hostName: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  /** The earlier of the certificate's end and its CA's. */
  readonly notAfter: number;
}

/**
 * Certificates already verified against a CA, by the CA and the certificate's own hash.
 * Verifying one takes milliseconds (parsing, a signature check); a connection presents the
 * same certificate on every call.
 */
const verified = new Map<string, VerifiedEntry>();
const MAX_VERIFIED = 1024;

function remember(key: string, entry: VerifiedEntry): void {
  verified.set(key, entry);
  if (verified.size > MAX_VERIFIED) {
    const oldest = verified.keys().next().value;
    if (oldest !== undefined) verified.delete(oldest);
  }
}

let lastCa: { pem: string; key: string; notAfter: number } | undefined;

function caFacts(caCertPem: string): { key: string; notAfter: number } {
  if (lastCa?.pem !== caCertPem) {
    lastCa = { pem: caCertPem, key: createHash('sha256').update(caCertPem).digest('hex'), notAfter: parseCaCert(caCertPem).notAfter.getTime() };
  }
  return lastCa;
}

function caKey(caCertPem: string): string {
  return caFacts(caCertPem).key;
}

function caNotAfter(caCertPem: string): number {
  return caFacts(caCertPem).notAfter;
}

function unauthenticated(reason: string, cause?: unknown): CmdopError {
  return new CmdopError('denied', `refused before the gate: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Join this workspace with `cmdop join`, or renew the host certificate.',
    details: { stage: 'authentication' },
  });
}
