/**
 * The membership messages are checked at the edge (STYLE.md habit 7): a request that is not a
 * token, a host name, a PEM request of sane size or a HOST:PORT address never reaches the
 * handler, and a reply that does not hold the same shapes never reaches the caller.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHostKeyAndCsr } from '../../src/identity/host-cert.js';
import { createWorkspaceCa, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import { CODECS } from '../../src/transport/wire-codec.js';

let csrPem: string;
let ca: WorkspaceCa;

beforeAll(async () => {
  csrPem = (await createHostKeyAndCsr('gamma')).csrPem;
  ca = await createWorkspaceCa({ name: 'lab' });
});

describe('Join request', () => {
  it('is decoded frozen, with the host name lower-cased', () => {
    const request = CODECS.Join.decodeRequest({ token: 't', host_name: 'Gamma', csr_pem: csrPem });
    expect(request).toEqual({ token: 't', host_name: 'gamma', csr_pem: csrPem });
    expect(Object.isFrozen(request)).toBe(true);
  });

  it.each([
    ['an empty token', () => ({ token: '', host_name: 'gamma', csr_pem: csrPem }), /token is empty/],
    ['a token over 4 KiB', () => ({ token: 'x'.repeat(4097), host_name: 'gamma', csr_pem: csrPem }), /token is larger than 4096 bytes/],
    ['a host name with an underscore', () => ({ token: 't', host_name: 'gam_ma', csr_pem: csrPem }), /host_name: not a valid host name/],
    ['an empty host name', () => ({ token: 't', host_name: '', csr_pem: csrPem }), /host_name: not a valid host name/],
    ['a CSR that is not PEM', () => ({ token: 't', host_name: 'gamma', csr_pem: 'MIIB...' }), /csr_pem is not one PEM block/],
    ['a certificate instead of a CSR', () => ({ token: 't', host_name: 'gamma', csr_pem: ca.certPem }), /csr_pem is not one PEM block/],
    ['a CSR over 16 KiB', () => ({ token: 't', host_name: 'gamma', csr_pem: csrPem.replace('\n', `\n${'A'.repeat(64)}\n`.repeat(300)) }), /csr_pem is larger than 16384 bytes/],
  ])('refuses %s with invalid_input', (_what, message, why) => {
    expect(() => CODECS.Join.decodeRequest(message())).toThrow(expect.objectContaining({ code: 'invalid_input', message: expect.stringMatching(why) as unknown }) as Error);
  });
});

describe('Renew and Announce requests', () => {
  it('Renew refuses anything but one PEM certificate request', () => {
    expect(CODECS.Renew.decodeRequest({ csr_pem: csrPem })).toEqual({ csr_pem: csrPem });
    expect(() => CODECS.Renew.decodeRequest({ csr_pem: `${csrPem}${csrPem}` })).toThrow(/not one PEM block/);
  });

  it.each([['10.0.0.5:7443'], ['[fd00::5]:1'], ['vps-audi.lan:65535']])('Announce accepts %s', (address) => {
    expect(CODECS.Announce.decodeRequest({ address })).toEqual({ address });
  });

  it.each([[''], ['10.0.0.5'], ['10.0.0.5:0'], ['10.0.0.5:65536'], ['fd00::5:7443'], ['10.0.0.5:7443 ']])('Announce refuses %j', (address) => {
    expect(() => CODECS.Announce.decodeRequest({ address })).toThrow(expect.objectContaining({ code: 'invalid_input' }) as Error);
  });
});

describe('replies', () => {
  it('a roster entry with empty address and last_seen decodes to absent fields', () => {
    const reply = CODECS.Roster.decodeResponse({ peers: [{ name: 'Beta', address: '', last_seen: '', online: false }], revoked: [] });
    expect(reply).toEqual({ peers: [{ name: 'beta', online: false }], revoked: [] });
  });

  it('Roster carries the revoked host names, lower-cased, once each, frozen', () => {
    const reply = CODECS.Roster.decodeResponse({ peers: [], revoked: ['Beta', 'gamma', 'beta'] });
    expect(reply.revoked).toEqual(['beta', 'gamma']);
    expect(Object.isFrozen(reply.revoked)).toBe(true);
    expect(CODECS.Roster.encodeResponse({ peers: [], revoked: ['beta'] })).toEqual({ peers: [], revoked: ['beta'] });
  });

  it('Announce carries the revoked names and the workspace credentials: key hashes and the OpenID provider', () => {
    const key = { id: 'a'.repeat(32), name: 'ci', secret_hash: 'b'.repeat(64), expires_at: null, revoked_at: '2026-11-21T10:00:00.000Z' };
    const oidc = { issuer: 'https://login.example.com', client_id: 'cmdop', audience: null };
    const wire = CODECS.Announce.encodeResponse({ peers: [], revoked: ['beta'], credentials: { api_keys: [key], oidc } });
    expect(wire).toEqual({
      peers: [],
      revoked: ['beta'],
      api_keys: [{ ...key, expires_at: '' }],
      oidc: { ...oidc, audience: '' },
    });
    const back = CODECS.Announce.decodeResponse(wire);
    expect(back).toEqual({ peers: [], revoked: ['beta'], credentials: { api_keys: [key], oidc } });
    expect(CODECS.Announce.decodeResponse({ ...wire, oidc: null }).credentials.oidc).toBeNull();
  });

  it.each([
    ['a key id that is not 32 hex characters', { id: 'x', name: 'ci', secret_hash: 'b'.repeat(64), expires_at: '', revoked_at: '' }],
    ['a hash that is not sha256 hex', { id: 'a'.repeat(32), name: 'ci', secret_hash: 'nope', expires_at: '', revoked_at: '' }],
    ['a revocation time that is not ISO 8601', { id: 'a'.repeat(32), name: 'ci', secret_hash: 'b'.repeat(64), expires_at: '', revoked_at: 'soon' }],
  ])('an API key entry with %s from the CA host is internal', (_what, entry) => {
    expect(() => CODECS.Announce.decodeResponse({ peers: [], revoked: [], api_keys: [entry], oidc: null })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });

  it.each([
    ['a name that is not a host name', ['not a host']],
    ['an empty name', ['']],
    ['more than 10 000 names', Array.from({ length: 10_001 }, (_, i) => `host-${i}`)],
  ])('a revoked list with %s from the peer is internal', (_what, revoked) => {
    expect(() => CODECS.Announce.decodeResponse({ peers: [], revoked, api_keys: [], oidc: null })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
    expect(() => CODECS.Roster.decodeResponse({ peers: [], revoked })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });

  it('a reply without the revoked list is malformed (proto-loader always fills it in)', () => {
    expect(() => CODECS.Roster.decodeResponse({ peers: [] })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });

  it('a handler reply with a bad revoked name is refused before it is sent', () => {
    expect(() => CODECS.Announce.encodeResponse({ peers: [], revoked: ['no such name!'], credentials: { api_keys: [], oidc: null } })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });

  it.each([
    ['a bad host name', { name: 'not a host', address: '', last_seen: '', online: true }],
    ['a bad address', { name: 'beta', address: 'beta', last_seen: '', online: true }],
    ['a time that is not ISO 8601', { name: 'beta', address: '', last_seen: 'yesterday', online: true }],
  ])('a roster entry with %s from the peer is internal', (_what, entry) => {
    expect(() => CODECS.Roster.decodeResponse({ peers: [entry], revoked: [] })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });

  it('a handler reply that does not hold together is refused before it is sent', () => {
    const good = { cert_pem: ca.certPem, ca_cert_pem: ca.certPem, workspace_id: ca.workspaceId, workspace_name: 'lab', ca_host_name: 'alpha', ca_address: '10.0.0.5:7443' };
    expect(CODECS.Join.encodeResponse(good)).toEqual(good);
    expect(() => CODECS.Join.encodeResponse({ ...good, workspace_id: 'nope' })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
    expect(() => CODECS.Join.encodeResponse({ ...good, ca_address: '' })).toThrow(expect.objectContaining({ code: 'internal' }) as Error);
  });
});
