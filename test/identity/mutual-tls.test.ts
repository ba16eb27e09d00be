/**
 * The certificates work for real mutual TLS with node:tls: the server learns the client's host
 * name from its verified certificate, and a certificate from another workspace fails the handshake.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyHostCert } from '../../src/identity/host-cert.js';
import { createWorkspaceCa, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import { issueHost, type IssuedHost } from './identity-fixtures.js';

let ca: WorkspaceCa;
let otherCa: WorkspaceCa;
let alpha: IssuedHost;
let beta: IssuedHost;
let intruder: IssuedHost;
beforeAll(async () => {
  ca = await createWorkspaceCa({ name: 'lab' });
  otherCa = await createWorkspaceCa({ name: 'lab' });
  alpha = await issueHost(ca, 'alpha');
  beta = await issueHost(ca, 'beta');
  // Same host name and same CA name, another workspace.
  intruder = await issueHost(otherCa, 'beta');
});

interface Handshakes {
  readonly port: number;
  /** Host names (from verifyHostCert) of clients whose handshake completed. */
  readonly accepted: string[];
  /** Subject alternative names as node:tls reports them for accepted clients. */
  readonly peerSans: string[];
  /** Errors of handshakes the server refused. */
  readonly refused: Error[];
}

const servers: tls.Server[] = [];
const sockets = new Set<tls.TLSSocket>();

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => { resolve(); }))));
});

/** Starts alpha's server on 127.0.0.1, port 0, requiring a client certificate from the workspace CA. */
async function startAlphaServer(): Promise<Handshakes> {
  const accepted: string[] = [];
  const peerSans: string[] = [];
  const refused: Error[] = [];
  const server = tls.createServer({ key: alpha.keyPem, cert: alpha.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    sockets.add(socket);
    const peer = socket.getPeerCertificate();
    peerSans.push(peer.subjectaltname ?? '');
    accepted.push(verifyHostCert(peer.raw, ca.certPem).hostName);
    socket.end('hello\n');
  });
  server.on('tlsClientError', (error) => refused.push(error));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, accepted, peerSans, refused };
}

/** Connects as a client with `identity` and returns what the server sent, or the error that ended the connection. */
async function connect(port: number, identity: IssuedHost, trusted: string): Promise<{ data: string; error: Error | undefined }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'alpha', key: identity.keyPem, cert: identity.certPem, ca: trusted });
  sockets.add(socket);
  let data = '';
  let error: Error | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  socket.on('error', (e: Error) => {
    error = e;
  });
  // Not events.once: it would reject on 'error', and the error is part of the result here.
  await new Promise<void>((resolve) => socket.on('close', () => { resolve(); }));
  return { data, error };
}

describe('mutual TLS with workspace certificates', () => {
  it('completes the handshake and names the client host from its certificate', async () => {
    const server = await startAlphaServer();
    const result = await connect(server.port, beta, ca.certPem);
    expect(result.error).toBeUndefined();
    expect(result.data).toBe('hello\n');
    expect(server.accepted).toEqual(['beta']);
    expect(server.peerSans[0]).toContain('DNS:beta');
    expect(server.peerSans[0]).toContain(`URI:cmdop://workspace/${ca.workspaceId}`);
    expect(server.refused).toEqual([]);
  });

  it('refuses a client whose certificate comes from another workspace, at the handshake', async () => {
    const server = await startAlphaServer();
    const result = await connect(server.port, intruder, ca.certPem);
    expect(result.data).toBe('');
    expect(server.accepted).toEqual([]);
    // node:tls destroys a connection whose client certificate fails verification (rejectUnauthorized)
    // before 'secureConnection', so the server sees only a refused handshake.
    expect(server.refused).toHaveLength(1);
  });

  it('refuses a client that presents no certificate', async () => {
    const server = await startAlphaServer();
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'alpha', ca: ca.certPem });
    sockets.add(socket);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.on('close', () => { resolve(); }));
    expect(server.accepted).toEqual([]);
    expect(server.refused).toHaveLength(1);
  });

  it('lets the client refuse a server from another workspace', async () => {
    const server = await startAlphaServer();
    // The client trusts only the other workspace's CA, so alpha's certificate does not verify.
    const result = await connect(server.port, intruder, otherCa.certPem);
    expect(result.data).toBe('');
    expect(result.error?.message).toMatch(/certificate signature failure|unable to verify|self.signed|unknown ca/i);
    expect(server.accepted).toEqual([]);
  });
});
