/**
 * Workspace membership over the Mesh service (DESIGN.md §6): Join from a host without a
 * certificate, pinned by the CA fingerprint of its token; Join as the only RPC open to such a
 * caller; Renew, Announce and Roster with the caller from its verified certificate; and the
 * server's and the client's identity replaced while they run.
 *
 * The join handler here is the fake in transport-fixtures.ts: it compares the token with a fixed
 * string. Redeeming real one-time tokens is the daemon handler's job (src/identity/join-token.ts
 * and its tests); what is tested here is that the transport gets the token to the handler, only
 * from a client that verified the server, and nowhere else.
 */
import { caFingerprint } from '../../src/identity/workspace-ca.js';
import { X509Certificate } from 'node:crypto';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import { createHostKeyAndCsr, verifyHostCert } from '../../src/identity/host-cert.js';
import { joinWorkspace } from '../../src/transport/grpc-client.js';
import type { MeshServer, MeshTlsOptions } from '../../src/transport/grpc-server.js';
import { CODE_TRAILER } from '../../src/transport/grpc-status.js';
import type { MeshMethod } from '../../src/transport/wire-types.js';
import { issueHost } from '../identity/identity-fixtures.js';
import { createPki, createRecordingHandler, Harness, rawCall, type FakeCaHost, type Pki } from './transport-fixtures.js';

const TOKEN = 'cmdop-join.fixed-test-token';

let pki: Pki;
let caHost: FakeCaHost;
let gammaCsr: { keyPem: string; csrPem: string };
const harness = new Harness();
const silentServers: NetServer[] = [];

beforeAll(async () => {
  pki = await createPki();
  caHost = { ca: pki.ca, token: TOKEN, hostName: 'alpha', address: '10.0.0.5:7443' };
  gammaCsr = await createHostKeyAndCsr('gamma');
});

afterEach(async () => {
  await harness.closeAll();
  await Promise.all(silentServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

afterAll(async () => {
  await harness.closeAll();
});

async function rejection(promise: Promise<unknown>): Promise<CmdopError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CmdopError);
  return error as CmdopError;
}

function joinGamma(server: MeshServer, overrides: { fingerprint?: string; token?: string; timeoutMs?: number; address?: string } = {}) {
  return joinWorkspace({
    address: overrides.address ?? server.address,
    fingerprint: overrides.fingerprint ?? pki.ca.fingerprint,
    token: overrides.token ?? TOKEN,
    hostName: 'gamma',
    csrPem: gammaCsr.csrPem,
    ...(overrides.timeoutMs === undefined ? {} : { timeoutMs: overrides.timeoutMs }),
  });
}

/** The serial number of the certificate a fresh TLS connection to `server` is shown. */
function servedSerial(server: MeshServer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: pki.ca.certPem, servername: 'cmdop-peer', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** A valid-looking request of every method, for calls that must be refused before validation matters. */
const SAMPLE_REQUESTS: { readonly [M in MeshMethod]: object } = {
  Ping: {},
  ExecuteCommand: { command: 'id' },
  ReadFile: { path: '/etc/hostname' },
  WriteFile: { path: '/tmp/x', content: Buffer.from('x') },
  ListDir: { path: '/' },
  Join: { token: TOKEN, host_name: 'gamma', csr_pem: '' },
  Renew: { csr_pem: '' },
  Announce: { address: '127.0.0.9:7443' },
  Roster: {},
};
const AUTHENTICATED_METHODS = (Object.keys(SAMPLE_REQUESTS) as MeshMethod[]).filter((method) => method !== 'Join');

describe('joinWorkspace', () => {
  it('joins through a server of the pinned workspace and gets a certificate for its host name', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    // The fingerprint as `openssl x509 -fingerprint -sha256` prints it is accepted too.
    const colons = pki.ca.fingerprint.toUpperCase().replace(/(..)(?!$)/g, '$1:');
    const reply = await joinGamma(server, { fingerprint: colons });

    expect(reply).toMatchObject({ ca_cert_pem: pki.ca.certPem, workspace_id: pki.ca.workspaceId, workspace_name: 'lab', ca_host_name: 'alpha', ca_address: '10.0.0.5:7443' });
    expect(verifyHostCert(reply.cert_pem, pki.ca.certPem).hostName).toBe('gamma');
    expect(handler.calls).toHaveLength(1);
    expect(handler.calls[0]).toMatchObject({ method: 'Join', caller: null, request: { token: TOKEN, host_name: 'gamma' } });
    expect((handler.calls[0]?.ctx as { peer?: string } | undefined)?.peer).toMatch(/127\.0\.0\.1/);

    // The certificate works: gamma can now make authenticated calls as itself.
    const gamma: MeshTlsOptions = { keyPem: gammaCsr.keyPem, certPem: reply.cert_pem, caCertPem: reply.ca_cert_pem };
    await harness.client(server, gamma, { expectedHostName: 'alpha' }).ping();
    expect(handler.calls[1]?.caller).toMatchObject({ kind: 'remote', host: 'gamma', principal: 'host:gamma', certificate: caFingerprint(gamma.certPem) });
  });

  it('a token the handler does not accept is denied', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler(caHost));
    const error = await rejection(joinGamma(server, { token: 'cmdop-join.someone-elses' }));
    expect(error.code).toBe('denied');
    expect(error.message).toMatch(/not known here/);
  });

  it('a server of another workspace is refused before any Join reaches it; the token is never sent', async () => {
    const evilHandler = createRecordingHandler({ ...caHost, ca: pki.evilCa });
    const server = await harness.server(pki.evilAlpha, evilHandler);
    const error = await rejection(joinGamma(server));
    expect(error.code).toBe('denied');
    expect(error.message).toBe(
      `the server at ${server.address} is not of the workspace this credential was made for: its CA fingerprint is ${pki.evilCa.fingerprint}, the credential expects ${pki.ca.fingerprint}`,
    );
    expect(error.hint).toMatch(/intercepting/);
    expect(evilHandler.calls).toEqual([]);
  });

  it('a token made for another workspace is refused at a real server of this one, before its handler', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const error = await rejection(joinGamma(server, { fingerprint: pki.evilCa.fingerprint }));
    expect(error).toMatchObject({ code: 'denied', details: { presented: pki.ca.fingerprint, expected: pki.evilCa.fingerprint } });
    expect(handler.calls).toEqual([]);
  });

  it('a server that is not there is unavailable promptly', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler(caHost));
    await server.close(0);
    const t0 = Date.now();
    const error = await rejection(joinGamma(server, { timeoutMs: 10_000 }));
    expect(error.code).toBe('unavailable');
    expect(error.exitCode).toBe(7);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a server that accepts the connection and never answers is unavailable at the deadline', async () => {
    // Reads (so it notices the client leave) and never writes a byte.
    const silent = createNetServer((socket) => socket.resume());
    silentServers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const t0 = Date.now();
    const error = await rejection(joinWorkspace({ address: `127.0.0.1:${port}`, fingerprint: pki.ca.fingerprint, token: TOKEN, hostName: 'gamma', csrPem: gammaCsr.csrPem, timeoutMs: 500 }));
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/no TLS handshake within 500 ms/);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('malformed input is invalid_input before anything is sent', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler(caHost));
    await expect(joinGamma(server, { address: 'no-port' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(joinGamma(server, { fingerprint: 'abc' })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(joinWorkspace({ address: server.address, fingerprint: pki.ca.fingerprint, token: TOKEN, hostName: 'not_a_host', csrPem: gammaCsr.csrPem })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});

describe('Join is the only RPC open to a caller without a certificate of the workspace', () => {
  it.each([
    ['no certificate', (): MeshTlsOptions | undefined => undefined],
    ['a certificate of another workspace', (): MeshTlsOptions | undefined => pki.evilAlpha],
  ])('with %s, Join reaches the handler and every other RPC is UNAUTHENTICATED before it', async (_what, tls) => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem, tls());

    const joined = await rawCall(raw, 'Join', { token: TOKEN, host_name: 'gamma', csr_pem: gammaCsr.csrPem });
    expect(joined.ok).toBe(true);
    expect(handler.calls.map((call) => call.method)).toEqual(['Join']);

    for (const method of AUTHENTICATED_METHODS) {
      const outcome = await rawCall(raw, method, SAMPLE_REQUESTS[method], { 'x-cmdop-host': 'beta' });
      expect(outcome.ok ? `${method}: ok` : `${method}: ${outcome.error.code}`).toBe(`${method}: ${GrpcStatus.UNAUTHENTICATED}`);
      if (!outcome.ok) expect(outcome.error.metadata.get(CODE_TRAILER)).toEqual(['denied']);
    }
    expect(handler.calls.map((call) => call.method)).toEqual(['Join']);
  });

  it('a Join without a certificate is still validated: a bad host name is INVALID_ARGUMENT before the handler', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem);
    const outcome = await rawCall(raw, 'Join', { token: TOKEN, host_name: 'Not A Host', csr_pem: gammaCsr.csrPem });
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(handler.calls).toEqual([]);
  });
});

describe('Renew, Announce and Roster', () => {
  it('Renew signs for the caller named by its certificate', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const { keyPem, csrPem } = await createHostKeyAndCsr('beta');
    const reply = await harness.client(server, pki.beta).renew({ csr_pem: csrPem });
    const renewed = verifyHostCert(reply.cert_pem, pki.ca.certPem);
    expect(renewed.hostName).toBe('beta');
    expect(renewed.serialNumber).not.toBe(verifyHostCert(pki.beta.certPem, pki.ca.certPem).serialNumber);
    expect(new X509Certificate(reply.cert_pem).checkPrivateKey((await import('node:crypto')).createPrivateKey(keyPem))).toBe(true);
    expect(handler.calls[0]).toMatchObject({ method: 'Renew', caller: { host: 'beta' } });
  });

  it('a caller claiming another name in metadata and in its CSR still renews as its certificate name, and is refused', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const { csrPem } = await createHostKeyAndCsr('alpha');
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, 'Renew', { csr_pem: csrPem }, { 'x-cmdop-host': 'alpha', 'x-cmdop-principal': 'host:alpha' });
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(handler.calls.map((call) => call.caller?.host)).toEqual(['beta']);
  });

  it('Announce records the caller from its certificate and returns the roster; Roster returns it too', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const spoofed = await rawCall(raw, 'Announce', { address: '127.0.0.3:7443' }, { 'x-cmdop-host': 'alpha' });
    expect(spoofed.ok).toBe(true);
    expect(handler.calls[0]?.caller).toMatchObject({ kind: 'remote', host: 'beta', principal: 'host:beta', certificate: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });
    expect((handler.calls[0]?.ctx as { peer?: string } | undefined)?.peer).toMatch(/127\.0\.0\.1/);

    const client = harness.client(server, pki.beta);
    const announced = await client.announce({ address: '[::1]:7443' });
    expect(announced.peers).toEqual([{ name: 'beta', address: '[::1]:7443', last_seen: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown, online: true }]);
    const roster = await client.roster();
    // An unknown address and a host never seen arrive as absent fields, not empty strings.
    expect(roster.peers).toEqual([announced.peers[0], { name: 'gamma', online: false }]);
    expect(Object.isFrozen(roster.peers)).toBe(true);
    // The revoked host names travel with the roster.
    expect(announced.revoked).toEqual([]);
    expect(roster.revoked).toEqual(['delta']);
    expect(handler.calls.map((call) => [call.method, call.caller?.host])).toEqual([
      ['Announce', 'beta'],
      ['Announce', 'beta'],
      ['Roster', 'beta'],
    ]);
  });

  it.each([
    ['no port', 'beta.lan'],
    ['port 0', '127.0.0.1:0'],
    ['port 65536', '127.0.0.1:65536'],
    ['spaces', ' 127.0.0.1:7443'],
  ])('an announced address with %s is refused: invalid_input at the client, INVALID_ARGUMENT at the server', async (_what, address) => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    await expect(harness.client(server, pki.beta).announce({ address })).rejects.toMatchObject({ code: 'invalid_input' });
    const outcome = await rawCall(harness.rawClient(server, pki.ca.certPem, pki.beta), 'Announce', { address });
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(handler.calls).toEqual([]);
  });
});

describe('identity hot-swap', () => {
  it('after server.updateIdentity a new connection sees the new certificate; calls keep working', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const before = await servedSerial(server);
    expect(before).toBe(new X509Certificate(pki.alpha.certPem).serialNumber);
    const oldClient = harness.client(server, pki.beta, { expectedHostName: 'alpha' });
    await oldClient.ping();

    const renewed = await issueHost(pki.ca, 'alpha');
    server.updateIdentity(renewed);
    expect(await servedSerial(server)).toBe(new X509Certificate(renewed.certPem).serialNumber);
    await expect(harness.client(server, pki.beta, { expectedHostName: 'alpha' }).ping()).resolves.toMatchObject({ host_name: 'alpha' });
    await expect(oldClient.ping()).resolves.toMatchObject({ host_name: 'alpha' });
  });

  it('server.updateIdentity refuses a pair that does not fit and keeps serving the old one', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler(caHost));
    const other = await issueHost(pki.ca, 'alpha');
    expect(() => {
      server.updateIdentity({ keyPem: other.keyPem, certPem: pki.alpha.certPem });
    }).toThrow(expect.objectContaining({ code: 'config', message: expect.stringMatching(/key does not belong/) as unknown }) as Error);
    expect(() => {
      server.updateIdentity({ keyPem: pki.evilAlpha.keyPem, certPem: pki.evilAlpha.certPem });
    }).toThrow(expect.objectContaining({ code: 'config', message: expect.stringMatching(/not signed by the workspace CA/) as unknown }) as Error);
    expect(await servedSerial(server)).toBe(new X509Certificate(pki.alpha.certPem).serialNumber);
    await expect(harness.client(server, pki.beta).ping()).resolves.toMatchObject({ host_name: 'alpha' });
  });

  it('after client.updateIdentity the next call carries the new certificate', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const client = harness.client(server, pki.beta);
    await client.ping();
    // A certificate with another name makes the switch visible in the caller the server sees.
    const delta = await issueHost(pki.ca, 'delta');
    client.updateIdentity(delta);
    await client.ping();
    expect(handler.calls.map((call) => call.caller?.host)).toEqual(['beta', 'delta']);
  });

  it('client.updateIdentity refuses a certificate of another workspace and keeps the old identity', async () => {
    const handler = createRecordingHandler(caHost);
    const server = await harness.server(pki.alpha, handler);
    const client = harness.client(server, pki.beta);
    expect(() => {
      client.updateIdentity(pki.evilAlpha);
    }).toThrow(expect.objectContaining({ code: 'config' }) as Error);
    await client.ping();
    expect(handler.calls.map((call) => call.caller?.host)).toEqual(['beta']);
  });

  it('a call in flight on the old identity is not cut by updateIdentity', async () => {
    const handler = createRecordingHandler(caHost);
    handler.slow.add('ReadFile');
    const server = await harness.server(pki.alpha, handler);
    const client = harness.client(server, pki.beta);
    const controller = new AbortController();
    const started = handler.nextCall();
    const inFlight = client.readFile({ path: '/big' }, { signal: controller.signal });
    await started;
    client.updateIdentity(await issueHost(pki.ca, 'delta'));
    await client.ping();
    // Still running on the old channel: only the caller's own cancel ends it.
    expect(handler.calls[0]?.ctx.signal.aborted).toBe(false);
    controller.abort();
    await expect(inFlight).rejects.toMatchObject({ code: 'tool_failed', message: expect.stringMatching(/cancelled by the caller/) as unknown });
  });
});
