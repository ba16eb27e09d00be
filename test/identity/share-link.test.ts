import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import {
  listShares,
  MAX_SHARE_TTL_HOURS,
  mintShare,
  parseShareToken,
  revokeAllShares,
  revokeShare,
  SHARE_PREFIX,
  sharesPath,
  shareTtlHours,
  verifyShare,
  verifyShareWith,
  type MintedShare,
  type ShareRecord,
} from '../../src/identity/share-link.js';
import { createTempDir, refusal, removeTempDir } from './identity-fixtures.js';

const NOW = new Date('2030-06-01T12:00:00Z');
const HOUR = 60 * 60 * 1000;
const later = (ms: number): Date => new Date(NOW.getTime() + ms);
const FINGERPRINT = 'ab'.repeat(32);
const HOST = 'build-box';
const ADDRESS = '10.0.0.5:8470';

let home: string;
beforeEach(async () => {
  home = await createTempDir();
});
afterEach(async () => {
  await removeTempDir(home);
});

const mint = (ttlHours = 24, hostName = HOST, at = NOW): Promise<MintedShare> => mintShare(home, { hostName, address: ADDRESS, caFingerprint: FINGERPRINT, ttlHours, now: at });
const verify = (token: string, at: Date, hostName = HOST) => verifyShare(home, token, { hostName, now: at });
const partsOf = (token: string): [string, string, string] => token.split('.') as [string, string, string];
const storedRecords = async (): Promise<ShareRecord[]> => (JSON.parse(await readFile(sharesPath(home), 'utf8')) as { shares: ShareRecord[] }).shares;

/** Every way a CmdopError can reach a user: message, hint, details and cause chain. */
function everythingSaid(error: CmdopError): string {
  const causes: string[] = [];
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) causes.push(cause.message, JSON.stringify(cause));
  return JSON.stringify({ message: error.message, hint: error.hint, details: error.details, causes });
}

/** The token with its payload claims changed by `edit`, the secret kept. */
function withPayload(token: string, edit: (claims: Record<string, unknown>) => void): string {
  const [prefix, payload, secret] = partsOf(token);
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  edit(claims);
  return [prefix, Buffer.from(JSON.stringify(claims)).toString('base64url'), secret].join('.');
}

describe('shareTtlHours', () => {
  it.each([
    [1, 1],
    [HOUR, 1],
    [HOUR + 1, 2],
    [90 * 60 * 1000, 2],
    [24 * HOUR, 24],
    [720 * HOUR, 720],
  ])('rounds %d ms up to %d whole hours', (ms, hours) => {
    expect(shareTtlHours(ms)).toBe(hours);
  });

  it.each([
    ['0', 0],
    ['negative', -HOUR],
    ['721 h', 721 * HOUR],
    ['720 h and 1 ms', 720 * HOUR + 1],
    ['not a number', Number.NaN],
    ['infinite', Number.POSITIVE_INFINITY],
  ])('refuses a duration that is %s (exit 2)', async (_what, ms) => {
    const error = await refusal('invalid_input', () => shareTtlHours(ms));
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(`${MAX_SHARE_TTL_HOURS} hours`);
  });
});

describe('mintShare / parseShareToken', () => {
  it('makes a link bound to the host, carrying its address and the CA fingerprint, and stores only a hash', async () => {
    const minted = await mint(24);
    expect(minted.token).toMatch(/^cmdop-share\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(minted).toEqual({
      token: minted.token,
      id: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown,
      host: HOST,
      address: ADDRESS,
      created_at: NOW.toISOString(),
      expires_at: later(24 * HOUR).toISOString(),
      principal: `guest:${minted.id}`,
    });
    expect(parseShareToken(minted.token)).toEqual({ version: 1, id: minted.id, host: HOST, caFingerprint: FINGERPRINT, address: ADDRESS, expiresAt: later(24 * HOUR) });

    expect((await stat(sharesPath(home))).mode & 0o777).toBe(0o600);
    const file = await readFile(sharesPath(home), 'utf8');
    expect(file).not.toContain(partsOf(minted.token)[2]);
    expect(file).not.toContain(minted.token);
    expect(await storedRecords()).toEqual([
      { id: minted.id, host: HOST, secretHash: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown, created_at: NOW.toISOString(), expires_at: later(24 * HOUR).toISOString(), last_used_at: null, revoked_at: null },
    ]);
  });

  it('accepts a fingerprint with colons and upper case, and stores it canonical in the link', async () => {
    const minted = await mintShare(home, { hostName: HOST, address: ADDRESS, caFingerprint: FINGERPRINT.toUpperCase().replace(/(..)(?!$)/g, '$1:'), ttlHours: 1, now: NOW });
    expect(parseShareToken(minted.token).caFingerprint).toBe(FINGERPRINT);
  });

  it.each([
    ['a host name in upper case', { hostName: 'Build-Box' }],
    ['a host name with a dot', { hostName: 'build.box' }],
    ['an address without a port', { address: '10.0.0.5' }],
    ['an address with port 0', { address: '10.0.0.5:0' }],
    ['a short fingerprint', { caFingerprint: 'abcd' }],
    ['0 hours', { ttlHours: 0 }],
    ['721 hours', { ttlHours: 721 }],
    ['1.5 hours', { ttlHours: 1.5 }],
  ])('refuses %s, writing nothing', async (_what, change) => {
    await refusal('invalid_input', () => mintShare(home, { hostName: HOST, address: ADDRESS, caFingerprint: FINGERPRINT, ttlHours: 24, now: NOW, ...change }));
    await expect(stat(sharesPath(home))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lands every one of several concurrent mints', async () => {
    const minted = await Promise.all(Array.from({ length: 8 }, () => mint()));
    const listed = await listShares(home, NOW);
    expect(listed.map((share) => share.id).sort()).toEqual(minted.map((share) => share.id).sort());
    for (const each of minted) await expect(verify(each.token, NOW)).resolves.toMatchObject({ id: each.id });
  });

  it('drops links that ended more than 30 days ago when it mints, and keeps the recent ones', async () => {
    const old = await mint(1);
    const revokedLongAgo = await mint(720);
    await revokeShare(home, revokedLongAgo.id, later(HOUR));
    const recent = await mint(1, HOST, later(20 * 24 * HOUR));
    const fresh = await mint(1, HOST, later(32 * 24 * HOUR));
    const ids = (await listShares(home, later(32 * 24 * HOUR))).map((share) => share.id);
    expect(ids).toEqual([recent.id, fresh.id]);
    expect(ids).not.toContain(old.id);
  });

  it.each([
    ['wrong prefix', (token: string) => token.replace(/^cmdop-share\./, 'cmdop-key.')],
    ['two parts', (token: string) => token.split('.').slice(0, 2).join('.')],
    ['a short secret', (token: string) => token.slice(0, -4)],
    ['payload not JSON', (token: string) => `${SHARE_PREFIX}.${Buffer.from('{nope').toString('base64url')}.${partsOf(token)[2]}`],
    ['payload without an address', (token: string) => withPayload(token, (claims) => delete claims.addr)],
    ['far too long', (token: string) => `${token}${'A'.repeat(3000)}`],
  ])('parseShareToken refuses a malformed link (%s) without quoting it', async (_what, mangle) => {
    const { token } = await mint();
    const error = await refusal('invalid_input', () => parseShareToken(mangle(token)));
    expect(everythingSaid(error)).not.toContain(partsOf(token)[2]);
  });
});

describe('verifyShare / verifyShareWith', () => {
  it('accepts a valid link on its host as guest:<id>, until it expires', async () => {
    const minted = await mint(2);
    const expected = { id: minted.id, principal: `guest:${minted.id}`, expiresAt: later(2 * HOUR) };
    await expect(verify(minted.token, later(1000))).resolves.toEqual(expected);
    await expect(verify(` ${minted.token}\n`, later(2 * HOUR - 1))).resolves.toEqual(expected);
    expect(verifyShareWith(await storedRecords(), minted.token, { hostName: HOST, now: later(1000) })).toEqual(expected);
  });

  const refusals: [string, (minted: MintedShare) => Promise<string> | string, number, string][] = [
    ['expired', (m) => m.token, 24 * HOUR, 'expired'],
    ['expired long ago', (m) => m.token, 400 * 24 * HOUR, 'expired'],
    ['revoked', async (m) => {
      await revokeShare(home, m.id, later(1));
      return m.token;
    }, 1000, 'revoked'],
    ['tampered payload (host changed to another, on that host)', (m) => withPayload(m.token, (claims) => (claims.host = 'other-box')), 1000, 'for the host "other-box"'],
    ['tampered payload (expiry extended)', (m) => withPayload(m.token, (claims) => (claims.exp = later(1000 * HOUR).getTime())), 1000, 'not one this host issued'],
    ['tampered payload (address changed)', (m) => withPayload(m.token, (claims) => (claims.addr = '10.6.6.6:8470')), 1000, 'not one this host issued'],
    ['tampered secret', (m) => {
      const [prefix, payload, secret] = partsOf(m.token);
      const bytes = Buffer.from(secret, 'base64url');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return [prefix, payload, bytes.toString('base64url')].join('.');
    }, 1000, 'not one this host issued'],
    ['an API key', (m) => m.token.replace(/^cmdop-share\./, 'cmdop-key.'), 1000, 'not a cmdop share link'],
    ['not a link at all', () => 'hunter2', 1000, 'not a cmdop share link'],
  ];

  it.each(refusals)('refuses a link that is %s, as denied at authentication, never quoting it', async (_what, present, afterMs, says) => {
    const minted = await mint(24);
    const presented = await present(minted);
    for (const check of [() => verify(presented, later(afterMs)), async () => verifyShareWith(await storedRecords(), presented, { hostName: HOST, now: later(afterMs) })]) {
      const error = await refusal('denied', check);
      expect(error.exitCode).toBe(3);
      expect(error.details).toMatchObject({ stage: 'authentication' });
      expect(error.message).toContain(says);
      const said = everythingSaid(error);
      expect(said).not.toContain(partsOf(minted.token)[2]);
      expect(said).not.toContain(presented.split('.')[2] ?? presented);
    }
  });

  it("refuses a link for host A presented to host B, saying so before B's records are looked at", async () => {
    const forA = await mint(24, 'host-a');
    const otherHome = await createTempDir();
    try {
      // Host B holds no shares file at all: the host check comes first.
      const error = await refusal('denied', () => verifyShare(otherHome, forA.token, { hostName: 'host-b', now: NOW }));
      expect(error.message).toContain('for the host "host-a", not this host ("host-b")');
      expect(error.details).toMatchObject({ stage: 'authentication', host: 'host-a' });
      // Even with A's records in hand, B refuses it.
      await refusal('denied', () => verifyShareWith([], forA.token, { hostName: 'host-b', now: NOW }));
      await refusal('denied', async () => verifyShareWith(await storedRecords(), forA.token, { hostName: 'host-b', now: NOW }));
      // Rewriting the host in the payload breaks the hash, even where the records are A's.
      const retargeted = withPayload(forA.token, (claims) => (claims.host = 'host-b'));
      const forged = await refusal('denied', async () => verifyShareWith(await storedRecords(), retargeted, { hostName: 'host-b', now: NOW }));
      expect(forged.message).toContain('not one this host issued');
      await expect(verify(forA.token, NOW, 'host-a')).resolves.toMatchObject({ id: forA.id });
    } finally {
      await removeTempDir(otherHome);
    }
  });

  it('refuses a link whose record is missing from the list', async () => {
    const first = await mint();
    const second = await mint();
    const withoutFirst = (await storedRecords()).filter((record) => record.id !== first.id);
    const error = await refusal('denied', () => verifyShareWith(withoutFirst, first.token, { hostName: HOST, now: NOW }));
    expect(error.message).toContain('not one this host issued');
    expect(verifyShareWith(withoutFirst, second.token, { hostName: HOST, now: NOW }).id).toBe(second.id);
  });

  it('refuses every link when the shares file has loose permissions (0644), as a configuration error', async () => {
    const minted = await mint();
    await expect(verify(minted.token, NOW)).resolves.toMatchObject({ id: minted.id });
    await chmod(sharesPath(home), 0o644);
    const error = await refusal('config', () => verify(minted.token, later(1000)));
    expect(error.message).toContain('mode 0644');
    await refusal('config', () => listShares(home));
  });

  it('sees a revocation made after the link was last verified (the reading is not kept past a change)', async () => {
    const minted = await mint();
    await verify(minted.token, later(1000));
    await revokeShare(home, minted.id, later(2000));
    expect((await refusal('denied', () => verify(minted.token, later(3000)))).message).toContain('revoked');
  });

  it('records last use, writing the file at most once a minute', async () => {
    const minted = await mint();
    const path = sharesPath(home);
    await verify(minted.token, later(1000));
    expect((await listShares(home, NOW))[0]?.last_used_at).toBe(later(1000).toISOString());
    const written = await readFile(path, 'utf8');
    const before = (await stat(path)).mtimeMs;
    for (let i = 0; i < 5; i += 1) await verify(minted.token, later(1000 + i * 10_000));
    expect(await readFile(path, 'utf8')).toBe(written);
    expect((await stat(path)).mtimeMs).toBe(before);
    await verify(minted.token, later(61_000));
    expect((await listShares(home, NOW))[0]?.last_used_at).toBe(later(61_000).toISOString());
  });

  it('reports a damaged shares file as a configuration error', async () => {
    const minted = await mint();
    await writeFile(sharesPath(home), '{"version":1,"shares":[{"id":"x"}]}\n', { mode: 0o600 });
    await refusal('config', () => verify(minted.token, NOW));
    await refusal('config', () => listShares(home));
  });
});

describe('listShares / revokeShare / revokeAllShares', () => {
  it('lists every link with its state, never a link, secret or hash', async () => {
    const active = await mint(48);
    const expiring = await mint(1);
    const revoked = await mint(48);
    await revokeShare(home, revoked.id, later(1000));
    const listed = await listShares(home, later(2 * HOUR));
    expect(listed.map((share) => [share.id, share.state])).toEqual([
      [active.id, 'active'],
      [expiring.id, 'expired'],
      [revoked.id, 'revoked'],
    ]);
    expect(listed[2]).toEqual({ id: revoked.id, host: HOST, created_at: NOW.toISOString(), expires_at: later(48 * HOUR).toISOString(), last_used_at: null, revoked_at: later(1000).toISOString(), state: 'revoked' });
    const text = JSON.stringify(listed);
    for (const { token } of [active, expiring, revoked]) expect(text).not.toContain(partsOf(token)[2]);
    for (const { secretHash } of await storedRecords()) expect(text).not.toContain(secretHash);
    expect(text).not.toContain('secretHash');
  });

  it('lists nothing on a host without links', async () => {
    await expect(listShares(home)).resolves.toEqual([]);
  });

  it('revokes one link by id; an unknown or already revoked id is not_found (exit 4)', async () => {
    const kept = await mint();
    const gone = await mint();
    await expect(revokeShare(home, gone.id, later(1000))).resolves.toMatchObject({ id: gone.id, state: 'revoked', revoked_at: later(1000).toISOString() });
    const again = await refusal('not_found', () => revokeShare(home, gone.id, later(2000)));
    expect(again.exitCode).toBe(4);
    expect(again.message).toContain(`already revoked at ${later(1000).toISOString()}`);
    expect((await refusal('not_found', () => revokeShare(home, 'f'.repeat(32)))).message).toContain('no share link');
    await refusal('invalid_input', () => revokeShare(home, 'not-an-id'));
    await expect(verify(kept.token, later(3000))).resolves.toMatchObject({ id: kept.id });
    await refusal('denied', () => verify(gone.token, later(3000)));
  });

  it('revokes every active link with revokeAllShares, leaving expired and revoked ones as they were', async () => {
    const a = await mint(48);
    const b = await mint(48);
    const expired = await mint(1);
    const earlier = await mint(48);
    await revokeShare(home, earlier.id, later(1000));
    const revoked = await revokeAllShares(home, later(2 * HOUR));
    expect(revoked.map((share) => share.id)).toEqual([a.id, b.id]);
    expect(revoked.every((share) => share.state === 'revoked' && share.revoked_at === later(2 * HOUR).toISOString())).toBe(true);
    const listed = await listShares(home, later(2 * HOUR));
    expect(listed.find((share) => share.id === expired.id)).toMatchObject({ state: 'expired', revoked_at: null });
    expect(listed.find((share) => share.id === earlier.id)?.revoked_at).toBe(later(1000).toISOString());
    for (const each of [a, b]) await refusal('denied', () => verify(each.token, later(2 * HOUR + 1)));
    await expect(revokeAllShares(home, later(3 * HOUR))).resolves.toEqual([]);
  });
});
