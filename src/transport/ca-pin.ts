/**
 * Finding the workspace CA from its fingerprint alone: a first TLS connection only reads the
 * certificate chain the server presents, trusting none of it, and picks the certificate with
 * that fingerprint, which must be a workspace CA. A joining host (its join token carries the
 * fingerprint) and a client that is not a host (its API key or share token carries it) then
 * trust that CA and nothing else, so their secret never reaches a server outside the workspace.
 */
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { CmdopError } from '../errors.js';
import { caFingerprint, parseCaCert } from '../identity/workspace-ca.js';
import { ANY_PEER_SERVERNAME } from './grpc-channel.js';

/**
 * The PEM of the workspace CA with `fingerprint` that the server at `address` presents in its
 * chain. Rejects with CmdopError('unavailable') when the server cannot be reached within
 * `timeoutMs`, CmdopError('denied') when no certificate of its chain has the fingerprint.
 */
export async function pinWorkspaceCa(address: string, fingerprint: string, timeoutMs: number): Promise<string> {
  return pinnedCa(address, fingerprint, await presentedChain(address, timeoutMs));
}

/** The certificates a TLS server presents, leaf first, in DER, read without trusting any of them. */
function presentedChain(address: string, timeoutMs: number): Promise<readonly Buffer[]> {
  const { host, port } = splitAddress(address);
  return new Promise((resolveChain, reject) => {
    const unavailable = (why: string, cause?: unknown): CmdopError =>
      new CmdopError('unavailable', `the server at ${address} is unreachable: ${why}`, {
        ...(cause === undefined ? {} : { cause }),
        hint: 'Check the address, that the daemon runs there (cmdop agent status), and that the port is reachable from here.',
        details: { address },
      });
    const socket = tlsConnect({
      host,
      port,
      // The same SNI as the gRPC channel sends; never an IP address (RFC 6066).
      servername: ANY_PEER_SERVERNAME,
      ALPNProtocols: ['h2'],
      // Nothing is trusted on this connection: it only reads the chain, and sends nothing.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unavailable(`no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const chain = chainOf(socket.getPeerCertificate(true));
      socket.destroy();
      resolveChain(chain);
    });
    socket.once('error', (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(unavailable(error.message, error));
    });
  });
}

/**
 * What node:tls really hands back from `getPeerCertificate(true)`: `{}` when there is no
 * certificate, and no issuer link above the last certificate it could place (its types claim both are always there).
 */
interface LoosePeerCertificate {
  readonly raw?: Buffer;
  readonly fingerprint256?: string;
  readonly issuerCertificate?: LoosePeerCertificate;
}

/** Walks node:tls's issuer links from the leaf to the last certificate, each once (a self-signed root links to itself). */
function chainOf(leaf: LoosePeerCertificate): readonly Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let current: LoosePeerCertificate | undefined = leaf;
  while (current?.raw !== undefined && current.fingerprint256 !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(current.raw);
    current = current.issuerCertificate;
  }
  return chain;
}

/** The PEM of the chain's certificate whose fingerprint is `fingerprint`, checked to be a workspace CA; CmdopError('denied') otherwise. */
function pinnedCa(address: string, fingerprint: string, chain: readonly Buffer[]): string {
  const pems = chain.map((der) => new X509Certificate(der).toString());
  const match = pems.find((pem) => caFingerprint(pem) === fingerprint);
  if (match === undefined) {
    const root = pems.at(-1);
    const seen = root === undefined ? 'none (it sent no certificate)' : caFingerprint(root);
    throw new CmdopError('denied', `the server at ${address} is not of the workspace this credential was made for: its CA fingerprint is ${seen}, the credential expects ${fingerprint}`, {
      hint: 'Check the address; a token or API key is only good for the workspace it was made for. If the address is right, someone may be intercepting the connection: send nothing there.',
      details: { address, presented: seen, expected: fingerprint },
    });
  }
  parseCaCert(match, 'denied');
  return match;
}

/** Splits a checked `HOST:PORT` (IPv6 in brackets) into the host without brackets and the port. */
export function splitAddress(address: string): { readonly host: string; readonly port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

