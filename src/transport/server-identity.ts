/**
 * The TLS identity the Mesh server presents, held in grpc-js certificate-provider credentials so
 * that it can be replaced while the server runs (after a renewal) and so that the handshake can
 * ask for a client certificate without refusing a client that has none (a host that is joining).
 * `ServerCredentials.createSsl` can only do "no client certificate" or "a verified one required".
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';

/** A host's private key and certificate, both PEM. */
export interface HostIdentityPair {
  /** PKCS#8 PEM. Never log it. */
  readonly keyPem: string;
  readonly certPem: string;
}

/** A key and certificate checked to belong together and to the workspace CA, ready for TLS. */
export interface CheckedIdentity {
  readonly privateKey: Buffer;
  /** The host certificate followed by the CA certificate, so a joining client finds the CA in the chain. */
  readonly certChain: Buffer;
  readonly caCertificate: Buffer;
  /** The host certificate's serial number, hex, upper case as node:crypto reports it. */
  readonly serialNumber: string;
}

/** Server credentials whose identity can be replaced; new connections get the latest one. */
export interface IdentityCredentials {
  readonly credentials: ServerCredentials;
  update(identity: CheckedIdentity): void;
}

/**
 * Checks that `keyPem` is the key of `certPem`, that `certPem` is signed by the CA, and that
 * OpenSSL accepts the three together; throws CmdopError('config') saying which fails. Time
 * validity is the client's check (a server started with a test clock, or just before a renewal,
 * still serves).
 */
export function checkIdentity(tls: HostIdentityPair & { readonly caCertPem: string }): CheckedIdentity {
  const cert = parse(tls.certPem, "this host's certificate");
  const ca = parse(tls.caCertPem, 'the workspace CA certificate');
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw identityError("this host's certificate is not signed by the workspace CA");
  }
  let keyMatches: boolean;
  try {
    keyMatches = cert.checkPrivateKey(createPrivateKey(tls.keyPem));
  } catch (error) {
    throw identityError("this host's key is not a readable private key", error);
  }
  if (!keyMatches) throw identityError("this host's key does not belong to its certificate");
  const identity: CheckedIdentity = {
    privateKey: Buffer.from(tls.keyPem),
    certChain: Buffer.from(`${withNewline(tls.certPem)}${withNewline(tls.caCertPem)}`),
    caCertificate: Buffer.from(tls.caCertPem),
    serialNumber: cert.serialNumber,
  };
  // grpc-js drops every new connection if setSecureContext fails, so fail here instead.
  try {
    createSecureContext({ key: identity.privateKey, cert: identity.certChain, ca: identity.caCertificate });
  } catch (error) {
    throw identityError('TLS refuses this key and certificate', error);
  }
  return identity;
}

/**
 * Credentials that request a client certificate, verify it against the CA when one comes, but
 * let the handshake finish without one; the server then authenticates each call itself.
 */
export function createIdentityCredentials(initial: CheckedIdentity): IdentityCredentials {
  const provider = new StaticCertificateProvider(initial);
  // grpc-js quirk (1.14): the exported function passes its FIRST argument to the constructor's
  // identity-provider slot and its second to the CA-provider slot, the reverse of its declared
  // parameter names. One provider serves both roles here, so the order cannot go wrong; a CA
  // provider that is not null makes grpc-js set `requestCert: true`, and `false` sets
  // `rejectUnauthorized: false`.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, provider, false);
  return {
    credentials,
    update: (identity) => {
      provider.setIdentity(identity);
    },
  };
}

/** A certificate provider holding values in memory; listeners get the current value when they subscribe and on each change. */
class StaticCertificateProvider implements experimental.CertificateProvider {
  private identity: CheckedIdentity;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();

  constructor(identity: CheckedIdentity) {
    this.identity = identity;
  }

  setIdentity(identity: CheckedIdentity): void {
    this.identity = identity;
    for (const listener of this.identityListeners) listener(this.identityUpdate());
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    // Delivered a tick later: grpc-js subscribes before it registers the server that needs the
    // update, so a value delivered at once would never reach that server, and it would drop
    // every connection as "credentials not loaded".
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: this.identity.caCertificate });
    });
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  private identityUpdate(): experimental.IdentityCertificateUpdate {
    return { certificate: this.identity.certChain, privateKey: this.identity.privateKey };
  }
}

function parse(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw identityError(`${what} is not a readable PEM certificate`, error);
  }
}

function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function identityError(reason: string, cause?: unknown): CmdopError {
  return new CmdopError('config', `this host cannot serve peers: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Renew the host certificate, or join the workspace again with `cmdop join`.',
  });
}
