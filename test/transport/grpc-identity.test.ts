/**
 * The caller is the verified certificate and nothing else (DESIGN.md §4.5, §6). The TLS
 * handshake asks for a client certificate but lets a joining host without one through, so the
 * per-call check (authenticatePeer with cmdop's rules and the server's clock) is what refuses
 * foreign, expired and missing certificates, with UNAUTHENTICATED before the handler runs.
 * test/transport/grpc-membership.test.ts covers Join, the one RPC open to such callers.
 */
import { caFingerprint } from '../../src/identity/workspace-ca.js';
import { X509Certificate } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import type { RefusedCall } from '../../src/transport/grpc-server.js';
import { CODE_TRAILER } from '../../src/transport/grpc-status.js';
import { authenticatePeer } from '../../src/transport/peer-identity.js';
import { daysAfter } from '../identity/identity-fixtures.js';
import { createPki, createRecordingHandler, Harness, rawCall, type Pki } from './transport-fixtures.js';

let pki: Pki;
const harness = new Harness();

beforeAll(async () => {
  pki = await createPki();
});

afterEach(async () => {
  await harness.closeAll();
});

afterAll(async () => {
  await harness.closeAll();
});

function der(certPem: string): Buffer {
  return new X509Certificate(certPem).raw;
}

describe('caller identity comes from the certificate only', () => {
  it('beta certificate makes the caller host:beta even when metadata claims alpha', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, 'ExecuteCommand', { command: 'id' }, { 'x-cmdop-host': 'alpha', 'x-cmdop-principal': 'host:alpha', 'x-cmdop-caller': 'local' });
    expect(outcome.ok).toBe(true);
    expect(handler.calls.map((call) => call.caller)).toEqual([{ kind: 'remote', host: 'beta', principal: 'host:beta', certificate: caFingerprint(pki.beta.certPem) }]);
  });

  it('alpha calling itself is host:alpha, the identity the self-bypass check compares', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    await harness.client(server, pki.alpha, { expectedHostName: 'alpha' }).ping();
    expect(handler.calls[0]?.caller).toEqual({ kind: 'remote', host: 'alpha', principal: 'host:alpha', certificate: caFingerprint(pki.alpha.certPem) });
  });
});

describe('the server refuses callers without a valid certificate of this workspace', () => {
  it('a certificate named "alpha" from another workspace is UNAUTHENTICATED; the handler never runs', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    // The intruder trusts the real CA, so only the server's check can stop it.
    const raw = harness.rawClient(server, pki.ca.certPem, pki.evilAlpha);
    const outcome = await rawCall(raw, 'Ping', {}, { 'x-cmdop-host': 'alpha' });
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    // grpc-js hands over a peer certificate only when OpenSSL verified it against the CA.
    expect(outcome.ok ? undefined : outcome.error.details).toMatch(/without a verified client certificate/);
    expect(handler.calls).toEqual([]);
  });

  it('a client with no certificate is UNAUTHENTICATED; the handler never runs', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem);
    const outcome = await rawCall(raw, 'Ping', {}, { 'x-cmdop-host': 'alpha' });
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(handler.calls).toEqual([]);
  });

  it('an expired host certificate is UNAUTHENTICATED; the handler never runs', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    const raw = harness.rawClient(server, pki.ca.certPem, pki.expiredBeta);
    const outcome = await rawCall(raw, 'Ping', {});
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(outcome.ok ? undefined : outcome.error.details).toMatch(/without a verified client certificate/);
    expect(handler.calls).toEqual([]);
  });
});

describe('the client checks its own certificate before calling', () => {
  it.each([
    ['expired', () => pki.expiredBeta, /expired/],
    ['from another workspace', () => ({ ...pki.evilAlpha, caCertPem: pki.ca.certPem }), /another workspace|not signed/],
  ])('a client whose certificate is %s is a config error naming why, not "unreachable"', async (_what, tls, why) => {
    const server = await harness.server(pki.alpha, createRecordingHandler());
    expect(() => harness.client(server, tls())).toThrow(expect.objectContaining({ code: 'config', message: expect.stringMatching(why) as unknown }) as Error);
  });

  it('a certificate that expires while the client lives fails the next call with config', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler());
    let now = new Date();
    const client = harness.client(server, pki.beta, { now: () => now });
    await expect(client.ping()).resolves.toMatchObject({ host_name: 'alpha' });
    now = daysAfter(now, 365);
    await expect(client.ping()).rejects.toMatchObject({ code: 'config', message: expect.stringMatching(/expired/) as unknown });
  });
});

describe('the server refuses callers per call (cmdop layer)', () => {
  it('a certificate expired by the server clock is UNAUTHENTICATED before the handler, and reported', async () => {
    const handler = createRecordingHandler();
    const refused: RefusedCall[] = [];
    // OpenSSL still accepts beta's certificate today; the server's clock says it is a year later.
    const server = await harness.server(pki.alpha, handler, { now: () => daysAfter(new Date(), 365), onRefused: (r) => refused.push(r) });
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, 'ReadFile', { path: '/srv/x' });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(outcome.error.metadata.get(CODE_TRAILER)).toEqual(['denied']);
    expect(outcome.error.details).toMatch(/expired/);
    expect(handler.calls).toEqual([]);
    expect(refused).toEqual([expect.objectContaining({ method: 'ReadFile', reason: expect.stringMatching(/expired/) as unknown })]);

    const typed = await harness.client(server, pki.beta).ping().catch((e: unknown) => e);
    expect(typed).toMatchObject({ code: 'denied' });
  });

  it.each([
    ['no auth context', null],
    ['a plaintext connection', { transportSecurityType: undefined }],
    ['TLS without a peer certificate', { transportSecurityType: 'ssl' }],
  ])('authenticatePeer refuses %s', (_what, auth) => {
    expect(() => authenticatePeer(auth, pki.ca.certPem, new Date())).toThrow(
      expect.objectContaining({ code: 'denied', details: { stage: 'authentication' } }) as Error,
    );
  });

  it('authenticatePeer refuses a certificate of another workspace even if TLS let it through', () => {
    const auth = { transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(pki.evilAlpha.certPem) } };
    expect(() => authenticatePeer(auth, pki.ca.certPem, new Date())).toThrow(/another workspace|not signed/);
  });

  it('authenticatePeer refuses an expired certificate', () => {
    const auth = { transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(pki.expiredBeta.certPem) } };
    expect(() => authenticatePeer(auth, pki.ca.certPem, new Date())).toThrow(/expired/);
  });

  it('authenticatePeer names the host of a valid certificate', () => {
    const auth = { transportSecurityType: 'ssl', sslPeerCertificate: { raw: der(pki.beta.certPem) } };
    expect(authenticatePeer(auth, pki.ca.certPem, new Date())).toEqual({ kind: 'remote', host: 'beta', principal: 'host:beta', certificate: caFingerprint(pki.beta.certPem) });
    // A second call is answered from the cache of verified certificates, alike.
    expect(authenticatePeer(auth, pki.ca.certPem, new Date())).toEqual({ kind: 'remote', host: 'beta', principal: 'host:beta', certificate: caFingerprint(pki.beta.certPem) });
  });
});

describe('the client checks the server', () => {
  it('refuses a server whose certificate names another host than expected', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    const error = await harness.client(server, pki.beta, { expectedHostName: 'gamma' }).ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CmdopError);
    expect(error).toMatchObject({ code: 'unavailable', message: expect.stringContaining('names host "alpha", not "gamma"') as unknown });
    expect(handler.calls).toEqual([]);
  });

  it('refuses a server of another workspace that calls itself alpha', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.evilAlpha, handler);
    const error = await harness.client(server, pki.beta, { expectedHostName: 'alpha' }).ping().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unavailable' });
    expect(handler.calls).toEqual([]);
  });

  it('accepts the expected host, case-insensitively', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler());
    await expect(harness.client(server, pki.beta, { expectedHostName: 'ALPHA' }).ping()).resolves.toMatchObject({ host_name: 'alpha' });
  });
});
