/**
 * The revoked-names store (`tls/revoked-names.json`): recorded once per name, 0600, read afresh
 * when the file changes, merged (never shrunk) from the CA host's list on a joined host, and
 * failing closed when damaged.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheRevoked, currentRevokedNames, recordRevoked, revokedNames, revokedPath } from '../../src/daemon/revoked-names.js';

let home: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'cmdop-revoked-test-'));
  mkdirSync(join(home, 'tls'), { mode: 0o700 });
});

afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('revoked names', () => {
  it('is empty without a file', async () => {
    expect([...(await revokedNames(home))]).toEqual([]);
    expect([...(await currentRevokedNames(home))]).toEqual([]);
  });

  it('records a name once, in a 0600 file, and says when it already was', async () => {
    const first = await recordRevoked(home, 'beta');
    expect(first.added).toBe(true);
    const again = await recordRevoked(home, 'beta');
    expect(again).toEqual({ added: false, revoked_at: first.revoked_at });
    await recordRevoked(home, 'gamma');
    expect([...(await revokedNames(home))].sort()).toEqual(['beta', 'gamma']);
    expect(statSync(revokedPath(home)).mode & 0o777).toBe(0o600);
  });

  it('the per-call reading sees a change to the file at the next call', async () => {
    expect((await currentRevokedNames(home)).has('beta')).toBe(false);
    await recordRevoked(home, 'beta');
    expect((await currentRevokedNames(home)).has('beta')).toBe(true);
    await recordRevoked(home, 'delta');
    expect([...(await currentRevokedNames(home))].sort()).toEqual(['beta', 'delta']);
  });

  it('a joined host adds what the CA host sends and never drops a name', async () => {
    await cacheRevoked(home, ['beta']);
    await cacheRevoked(home, ['gamma', 'gamma']);
    await cacheRevoked(home, []);
    expect([...(await currentRevokedNames(home))].sort()).toEqual(['beta', 'gamma']);
  });

  it('fails closed on a damaged file; a joined host replaces its damaged cache with the CA host list', async () => {
    writeFileSync(revokedPath(home), '{"version":1,"names":[{"name":"beta"}]}', { mode: 0o600 });
    await expect(revokedNames(home)).rejects.toMatchObject({ code: 'config', message: expect.stringContaining('is damaged') as unknown });
    await expect(currentRevokedNames(home)).rejects.toMatchObject({ code: 'config' });
    await expect(recordRevoked(home, 'gamma')).rejects.toMatchObject({ code: 'config' });
    await cacheRevoked(home, ['beta']);
    expect([...(await currentRevokedNames(home))]).toEqual(['beta']);
  });
});
