import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkJoinToken,
  createJoinTokenStore,
  joinTokensPath,
  mintJoinToken,
  parseJoinToken,
  redeemJoinToken,
  type JoinTokenStore,
  type MintedJoinToken,
} from '../../src/identity/join-token.js';
import { createTempDir, refusal, removeTempDir } from './identity-fixtures.js';

const NOW = new Date('2030-06-01T12:00:00Z');
const FINGERPRINT = 'ab'.repeat(32);
const THIRTY_MINUTES = 30 * 60 * 1000;

let home: string;
let store: JoinTokenStore;
beforeEach(async () => {
  home = await createTempDir();
  store = createJoinTokenStore(joinTokensPath(home));
});
afterEach(async () => {
  await removeTempDir(home);
});

async function minted(options: { ttlMs?: number; now?: Date } = {}): Promise<MintedJoinToken> {
  const token = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: '10.0.0.5:7443', ttlMs: options.ttlMs ?? THIRTY_MINUTES, now: options.now ?? NOW });
  await store.add(token, options.now ?? NOW);
  return token;
}

function secretOf(token: string): string {
  return token.split('.')[2] ?? '';
}

describe('mintJoinToken / parseJoinToken', () => {
  it('makes a compact token that carries the fingerprint and address to the joining side', () => {
    const { token, id, expiresAt, secretHash } = mintJoinToken({
      caFingerprint: 'AB:'.repeat(31) + 'AB',
      serverAddress: ' [fd00::5]:7443 ',
      ttlMs: THIRTY_MINUTES,
      now: NOW,
    });
    expect(token).toMatch(/^cmdop-join\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(expiresAt.toISOString()).toBe('2030-06-01T12:30:00.000Z');
    expect(parseJoinToken(token)).toEqual({ version: 1, id, caFingerprint: FINGERPRINT, serverAddress: '[fd00::5]:7443', expiresAt });
    // Pasted with surrounding whitespace, it still reads.
    expect(parseJoinToken(`  ${token}\n`).id).toBe(id);
  });

  it('never makes the same token twice', () => {
    const a = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: 'ca:7443', ttlMs: 1000 });
    const b = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: 'ca:7443', ttlMs: 1000 });
    expect(a.id).not.toBe(b.id);
    expect(secretOf(a.token)).not.toBe(secretOf(b.token));
  });

  it.each([
    ['a fingerprint that is not SHA-256', { caFingerprint: 'abc' }],
    ['an address without a port', { serverAddress: '10.0.0.5' }],
    ['port 0', { serverAddress: 'host:0' }],
    ['port 70000', { serverAddress: 'host:70000' }],
    ['a zero lifetime', { ttlMs: 0 }],
    ['a fractional lifetime', { ttlMs: 1.5 }],
    ['a lifetime of a year', { ttlMs: 365 * 24 * 3600 * 1000 }],
  ])('refuses %s', async (_what, change) => {
    await refusal('invalid_input', () => mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: 'ca:7443', ttlMs: 1000, ...change }));
  });

  it.each([
    ['empty', ''],
    ['another prefix', 'cmdop-guest.e30.' + 'A'.repeat(43)],
    ['two parts', 'cmdop-join.abc'],
    ['four parts', 'cmdop-join.a.b.c'],
    ['a payload that is not JSON', `cmdop-join.${Buffer.from('nope').toString('base64url')}.${'A'.repeat(43)}`],
    ['a payload with missing fields', `cmdop-join.${Buffer.from('{"v":1}').toString('base64url')}.${'A'.repeat(43)}`],
    ['a future version', `cmdop-join.${Buffer.from(JSON.stringify({ v: 2, id: 'a'.repeat(32), fp: FINGERPRINT, addr: 'h:1', exp: 1 })).toString('base64url')}.${'A'.repeat(43)}`],
    ['a short secret', `cmdop-join.${Buffer.from('{}').toString('base64url')}.AAAA`],
    ['far too long', `cmdop-join.${'A'.repeat(5000)}.${'A'.repeat(43)}`],
  ])('refuses a malformed token (%s) with a clear message', async (_what, token) => {
    const error = await refusal('invalid_input', () => parseJoinToken(token));
    expect(error.message).toMatch(/^this is not a cmdop join token: /);
  });

  it('never quotes the token in an error', async () => {
    const { token } = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: 'ca:7443', ttlMs: 1000 });
    const secret = secretOf(token);
    const broken = `${token}.extra`;
    const error = await refusal('invalid_input', () => parseJoinToken(broken));
    expect(JSON.stringify({ m: error.message, h: error.hint, d: error.details })).not.toContain(secret);
  });
});

describe('join-token store and redeemJoinToken', () => {
  it('stores only id, secret hash, expiry and used, in a 0600 file', async () => {
    const token = await minted();
    const text = await readFile(store.path, 'utf8');
    expect(text).not.toContain(secretOf(token.token));
    expect(text).not.toContain('10.0.0.5');
    expect(JSON.parse(text)).toEqual({
      version: 1,
      tokens: [{ id: token.id, secretHash: token.secretHash, expiresAt: '2030-06-01T12:30:00.000Z', used: false }],
    });
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
  });

  it('redeems a token once, and refuses the replay', async () => {
    const token = await minted();
    const redeemed = await redeemJoinToken(store, token.token, new Date(NOW.getTime() + 60_000));
    expect(redeemed.id).toBe(token.id);
    expect(redeemed.claims.serverAddress).toBe('10.0.0.5:7443');
    expect(await store.list()).toEqual([{ ...token.record, used: true, usedAt: '2030-06-01T12:01:00.000Z' }]);

    const replay = await refusal('denied', () => redeemJoinToken(store, token.token, new Date(NOW.getTime() + 120_000)));
    expect(replay.message).toMatch(/already used at 2030-06-01T12:01:00.000Z/);
  });

  it('checkJoinToken checks like redeem but uses nothing up', async () => {
    const token = await minted();
    expect((await checkJoinToken(store, token.token, NOW)).id).toBe(token.id);
    expect((await checkJoinToken(store, token.token, NOW)).id).toBe(token.id);
    expect((await store.list())[0]?.used).toBe(false);
    const forged = token.token.replace(secretOf(token.token), randomBytes(32).toString('base64url'));
    expect((await refusal('denied', () => checkJoinToken(store, forged, NOW))).message).toBe('the join token is not one this workspace issued');
    await redeemJoinToken(store, token.token, NOW);
    expect((await refusal('denied', () => checkJoinToken(store, token.token, NOW))).message).toMatch(/already used/);
    const late = await minted({ ttlMs: 60_000 });
    await refusal('denied', () => checkJoinToken(store, late.token, new Date(NOW.getTime() + 60_000)));
  });

  it('refuses an expired token, saying when it expired', async () => {
    const token = await minted({ ttlMs: 60_000 });
    const error = await refusal('denied', () => redeemJoinToken(store, token.token, new Date(NOW.getTime() + 60_000)));
    expect(error.message).toBe('the join token expired at 2030-06-01T12:01:00.000Z');
    expect((await store.list())[0]?.used).toBe(false);
  });

  it('refuses a forged secret as a token this workspace never issued', async () => {
    const token = await minted();
    const forged = token.token.replace(secretOf(token.token), randomBytes(32).toString('base64url'));
    const error = await refusal('denied', () => redeemJoinToken(store, forged, NOW));
    expect(error.message).toBe('the join token is not one this workspace issued');
    // The forgery used nothing up: the real token still works.
    await redeemJoinToken(store, token.token, NOW);
  });

  it('refuses a token whose payload was changed (another server address)', async () => {
    const token = await minted();
    const [prefix, payload, secret] = token.token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = [prefix, Buffer.from(JSON.stringify({ ...claims, addr: 'evil.example:7443' })).toString('base64url'), secret].join('.');
    expect(parseJoinToken(tampered).serverAddress).toBe('evil.example:7443');
    const error = await refusal('denied', () => redeemJoinToken(store, tampered, NOW));
    expect(error.message).toBe('the join token is not one this workspace issued');
  });

  it('refuses a token minted for another workspace', async () => {
    const foreign = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: '10.0.0.5:7443', ttlMs: THIRTY_MINUTES, now: NOW });
    await minted();
    const error = await refusal('denied', () => redeemJoinToken(store, foreign.token, NOW));
    expect(error.message).toBe('the join token is not one this workspace issued');
    await refusal('denied', () => redeemJoinToken(createJoinTokenStore(`${home}/none.json`), foreign.token, NOW));
  });

  it('lets exactly one of several concurrent redemptions of the same token succeed', async () => {
    const token = await minted();
    const other = await minted();
    const results = await Promise.allSettled([
      redeemJoinToken(store, token.token, NOW),
      redeemJoinToken(store, token.token, NOW),
      redeemJoinToken(createJoinTokenStore(store.path), token.token, NOW),
      redeemJoinToken(store, other.token, NOW),
    ]);
    const forToken = results.slice(0, 3);
    expect(forToken.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const result of forToken.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(String(result.reason)).toMatch(/already used/);
    }
    expect(results[3].status).toBe('fulfilled');
    expect((await store.list()).every((record) => record.used)).toBe(true);
  });

  it('drops records a week after they expired when a new token is added', async () => {
    const old = await minted({ ttlMs: 1000 });
    const later = new Date(NOW.getTime() + 8 * 24 * 3600 * 1000);
    const fresh = await minted({ now: later });
    expect((await store.list()).map((record) => record.id)).toEqual([fresh.id]);
    expect(old.id).not.toBe(fresh.id);
  });

  it('refuses a damaged store file without changing it', async () => {
    await writeFile(store.path, '{"version":1,"tokens":[{"id":"x"}]}', { mode: 0o600 });
    const token = mintJoinToken({ caFingerprint: FINGERPRINT, serverAddress: 'ca:7443', ttlMs: 1000, now: NOW });
    const error = await refusal('config', () => redeemJoinToken(store, token.token, NOW));
    expect(error.message).toMatch(/is damaged/);
    expect(await readFile(store.path, 'utf8')).toBe('{"version":1,"tokens":[{"id":"x"}]}');
  });
});
