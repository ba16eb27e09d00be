/**
 * Who is calling, from the verified TLS peer certificate and nothing else (DESIGN.md §4.5, §6):
 * no metadata, no request field, no address is evidence of identity. The server's handshake
 * asks for a client certificate but lets a client without one (or with a foreign one) finish it,
 * because a joining host has none yet; so this check is THE authentication of every RPC except
 * Join. grpc-js reports a peer certificate only when OpenSSL verified its chain against the
 * workspace CA (a foreign or expired one arrives as none); this check repeats the verification
 * with the cmdop rules (workspace id, validity at the injected clock, host name, key usage).
 */
import { CmdopError } from '../errors.js';
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
  let hostName: string;
  try {
    hostName = verifyHostCert(raw, caCertPem, { now }).hostName;
  } catch (error) {
    const why = error instanceof CmdopError ? error.message : 'the certificate could not be checked';
    throw unauthenticated(why, error);
  }
  return Object.freeze({ kind: 'remote', host: hostName, principal: hostPrincipal(hostName) });
}

function unauthenticated(reason: string, cause?: unknown): CmdopError {
  return new CmdopError('denied', `refused before the gate: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Join this workspace with `cmdop join`, or renew the host certificate.',
    details: { stage: 'authentication' },
  });
}
