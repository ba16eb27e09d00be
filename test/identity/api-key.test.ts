import { readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import {
  API_KEY_PREFIX,
  apiKeysPath,
  createApiKey,
  listApiKeys,
  MAX_API_KEY_TTL_MS,
  parseApiKey,
  parseApiKeyRecords,
  readApiKeyRecords,
  revokeApiKey,
  verifyApiKey,
  verifyApiKeyWith,
  type CreatedApiKey,
} from '../../src/identity/api-key.js';
import { createWorkspaceCa, saveCa, tlsDir, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import { createTempDir, refusal, removeTempDir } from './identity-fixtures.js';

const NOW = new Date('2030-06-01T12:00:00Z');
const DAY = 24 * 60 * 60 * 1000;
const later = (ms: number): Date => new Date(NOW.getTime() + ms);

let ca: WorkspaceCa;
let otherCa: WorkspaceCa;
let home: string;
beforeAll(async () => {
  ca = await createWorkspaceCa({ name: 'lab' });
  otherCa = await createWorkspaceCa({ name: 'elsewhere' });
});
beforeEach(async () => {
  home = await createTempDir();
  await saveCa(tlsDir(home), ca);
});
afterEach(async () => {
  await removeTempDir(home);
});

const create = (name: string, ttlMs?: number): Promise<CreatedApiKey> => createApiKey(home, { name, ttlMs, now: NOW });
const partsOf = (key: string): [string, string, string] => key.split('.') as [string, string, string];

/** Every way a CmdopError can reach a user: message, hint, details and cause chain. */
function everythingSaid(error: CmdopError): string {
  return JSON.stringify({ message: error.message, hint: error.hint, details: error.details, cause: String(error.cause) });
}

describe('createApiKey / parseApiKey', () => {
  it('makes a key that carries its name and the CA fingerprint, and stores only a hash of it', async () => {
    const created = await create('ci-deploy', 90 * DAY);
    expect(created.key).toMatch(/^cmdop-key\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(created.id).toMatch(/^[0-9a-f]{32}$/);
    expect(created.expires_at).toBe('2030-08-30T12:00:00.000Z');
    expect(created.ca_fingerprint).toBe(ca.fingerprint);
    expect(created).toMatchObject({ workspace: null, ca_host: null, ca_address: null });
    expect(parseApiKey(created.key)).toEqual({ version: 1, id: created.id, name: 'ci-deploy', caFingerprint: ca.fingerprint, expiresAt: new Date('2030-08-30T12:00:00.000Z') });

    const file = await readFile(apiKeysPath(home), 'utf8');
    expect((await stat(apiKeysPath(home))).mode & 0o777).toBe(0o600);
    expect(file).not.toContain(partsOf(created.key)[2]);
    expect(file).not.toContain(created.key);
    const stored = JSON.parse(file) as { version: number; keys: Record<string, unknown>[] };
    expect(stored.version).toBe(1);
    expect(stored.keys).toEqual([
      { id: created.id, name: 'ci-deploy', secretHash: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown, created_at: NOW.toISOString(), expires_at: '2030-08-30T12:00:00.000Z', last_used_at: null, revoked_at: null },
    ]);
  });

  it('makes a key without expiry when no lifetime is given', async () => {
    const created = await create('laptop');
    expect(created.expires_at).toBeNull();
    expect(parseApiKey(created.key).expiresAt).toBeUndefined();
    await expect(verifyApiKey(home, created.key, later(3000 * DAY))).resolves.toMatchObject({ name: 'laptop' });
  });

  it.each([
    ['', 'empty'],
    ['CI', 'upper case'],
    ['a b', 'a space'],
    ['x'.repeat(65), '65 characters'],
    ['ci/deploy', 'a slash'],
  ])('refuses the name %j (%s)', async (name) => {
    await refusal('invalid_input', () => create(name));
  });

  it.each([0, -1, 1.5, MAX_API_KEY_TTL_MS + 1])('refuses the lifetime %d ms', async (ttlMs) => {
    await refusal('invalid_input', () => create('ci', ttlMs));
  });

  it('accepts the longest lifetime, 3650 days', async () => {
    expect((await create('ci', 3650 * DAY)).expires_at).toBe(later(3650 * DAY).toISOString());
  });

  it('refuses on a host without the CA key (configuration error, exit 6)', async () => {
    const memberHome = await createTempDir();
    try {
      const error = await refusal('config', () => createApiKey(memberHome, { name: 'ci' }));
      expect(error.exitCode).toBe(6);
      expect(error.hint).toContain('CA host');
    } finally {
      await removeTempDir(memberHome);
    }
  });

  it('keeps names unique among keys not revoked, and frees a name on revocation', async () => {
    const first = await create('ci');
    const taken = await refusal('invalid_input', () => create('ci'));
    expect(taken.message).toContain('already exists');
    await revokeApiKey(home, 'ci', later(1000));
    const second = await create('ci');
    expect(second.id).not.toBe(first.id);
    await refusal('denied', () => verifyApiKey(home, first.key, later(2000)));
    await expect(verifyApiKey(home, second.key, later(2000))).resolves.toMatchObject({ id: second.id, principal: 'key:ci' });
  });

  it('lands every one of several concurrent creates, and only one of a contested name', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `runner-${i}`);
    const created = await Promise.all(names.map((name) => create(name)));
    const contested = await Promise.allSettled([create('shared'), create('shared'), create('shared')]);
    expect(contested.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const listed = await listApiKeys(home, NOW);
    expect(listed.map((k) => k.name).sort()).toEqual([...names, 'shared'].sort());
    for (const each of created) await expect(verifyApiKey(home, each.key, NOW)).resolves.toMatchObject({ name: each.name });
  });

  it.each([
    ['wrong prefix', (key: string) => key.replace(/^cmdop-key\./, 'cmdop-join.')],
    ['two parts', (key: string) => key.split('.').slice(0, 2).join('.')],
    ['a short secret', (key: string) => key.slice(0, -4)],
    ['payload not JSON', (key: string) => `${API_KEY_PREFIX}.${Buffer.from('{nope').toString('base64url')}.${partsOf(key)[2]}`],
    ['far too long', (key: string) => `${key}${'A'.repeat(3000)}`],
  ])('parseApiKey refuses a malformed key (%s) without quoting it', async (_what, mangle) => {
    const { key } = await create('ci');
    const bad = mangle(key);
    const error = await refusal('invalid_input', () => parseApiKey(bad));
    expect(everythingSaid(error)).not.toContain(partsOf(key)[2]);
  });
});

describe('verifyApiKey', () => {
  it('accepts a valid key as the principal key:<name>', async () => {
    const created = await create('ci-deploy', DAY);
    await expect(verifyApiKey(home, created.key, later(1000))).resolves.toEqual({ id: created.id, name: 'ci-deploy', principal: 'key:ci-deploy' });
    // Surrounding white space (a pasted key) does not matter.
    await expect(verifyApiKey(home, ` ${created.key}\n`, later(1000))).resolves.toMatchObject({ name: 'ci-deploy' });
  });

  const refusals: [string, (created: CreatedApiKey) => Promise<string> | string, number][] = [
    ['expired', (c) => c.key, DAY],
    ['expired long ago', (c) => c.key, 400 * DAY],
    ['revoked', async (c) => {
      await revokeApiKey(home, c.name, later(1));
      return c.key;
    }, 1000],
    ['tampered payload (name changed)', (c) => {
      const [prefix, payload, secret] = partsOf(c.key);
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      return [prefix, Buffer.from(JSON.stringify({ ...claims, name: 'admin' })).toString('base64url'), secret].join('.');
    }, 1000],
    ['tampered payload (expiry removed)', (c) => {
      const [prefix, payload, secret] = partsOf(c.key);
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      delete claims.exp;
      return [prefix, Buffer.from(JSON.stringify(claims)).toString('base64url'), secret].join('.');
    }, 2 * DAY],
    ['tampered secret', (c) => {
      const [prefix, payload, secret] = partsOf(c.key);
      const bytes = Buffer.from(secret, 'base64url');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return [prefix, payload, bytes.toString('base64url')].join('.');
    }, 1000],
    ['wrong prefix', (c) => c.key.replace(/^cmdop-key\./, 'cmdop-join.'), 1000],
    ['not a key at all', () => 'hunter2', 1000],
  ];

  it.each(refusals)('refuses a key that is %s, as denied (exit 3), never quoting it', async (_what, present, afterMs) => {
    const created = await create('ci', DAY);
    const presented = await present(created);
    const error = await refusal('denied', () => verifyApiKey(home, presented, later(afterMs)));
    expect(error.exitCode).toBe(3);
    const said = everythingSaid(error);
    expect(said).not.toContain(partsOf(created.key)[2]);
    expect(said).not.toContain(presented.split('.')[2] ?? presented);
  });

  it("refuses another store's key, even one carrying the same name and CA", async () => {
    const otherHome = await createTempDir();
    try {
      await saveCa(tlsDir(otherHome), ca);
      const foreign = await createApiKey(otherHome, { name: 'ci', now: NOW });
      await create('ci');
      const error = await refusal('denied', () => verifyApiKey(home, foreign.key, NOW));
      expect(error.message).toContain('not one this workspace issued');
    } finally {
      await removeTempDir(otherHome);
    }
  });

  it("refuses a key of another workspace's CA", async () => {
    const otherHome = await createTempDir();
    try {
      await saveCa(tlsDir(otherHome), otherCa);
      const foreign = await createApiKey(otherHome, { name: 'ci', now: NOW });
      expect(parseApiKey(foreign.key).caFingerprint).toBe(otherCa.fingerprint);
      await refusal('denied', () => verifyApiKey(home, foreign.key, NOW));
    } finally {
      await removeTempDir(otherHome);
    }
  });

  it('refuses every key when the store does not exist', async () => {
    const created = await create('ci');
    const emptyHome = await createTempDir();
    try {
      await refusal('denied', () => verifyApiKey(emptyHome, created.key, NOW));
    } finally {
      await removeTempDir(emptyHome);
    }
  });

  it('records last use, writing the file at most once a minute', async () => {
    const created = await create('ci');
    const path = apiKeysPath(home);
    await verifyApiKey(home, created.key, later(1000));
    expect((await listApiKeys(home, NOW))[0]?.last_used_at).toBe(later(1000).toISOString());
    const written = await readFile(path, 'utf8');
    const before = (await stat(path)).mtimeMs;
    for (let i = 0; i < 5; i += 1) await verifyApiKey(home, created.key, later(1000 + i * 10_000));
    expect(await readFile(path, 'utf8')).toBe(written);
    expect((await stat(path)).mtimeMs).toBe(before);
    await verifyApiKey(home, created.key, later(61_000));
    expect((await listApiKeys(home, NOW))[0]?.last_used_at).toBe(later(61_000).toISOString());
  });

  it('sees a revocation made after the key was last used (a revoked key mid-session)', async () => {
    const created = await create('ci');
    await verifyApiKey(home, created.key, later(1000));
    await revokeApiKey(home, 'ci', later(2000));
    const error = await refusal('denied', () => verifyApiKey(home, created.key, later(3000)));
    expect(error.message).toContain('revoked');
  });

  it('reports a damaged store as a configuration error', async () => {
    const created = await create('ci');
    await writeFile(apiKeysPath(home), '{"version":1,"keys":[{"id":"x"}]}\n', { mode: 0o600 });
    await refusal('config', () => verifyApiKey(home, created.key, NOW));
    await refusal('config', () => listApiKeys(home));
  });
});

describe('listApiKeys / revokeApiKey', () => {
  it('lists every key with its state, never a key, secret or hash', async () => {
    const active = await create('active');
    const expiring = await create('expiring', DAY);
    const revoked = await create('revoked');
    await revokeApiKey(home, 'revoked', later(1000));
    const listed = await listApiKeys(home, later(2 * DAY));
    expect(listed.map((k) => [k.name, k.state])).toEqual([
      ['active', 'active'],
      ['expiring', 'expired'],
      ['revoked', 'revoked'],
    ]);
    expect(listed[2]).toEqual({ id: revoked.id, name: 'revoked', created_at: NOW.toISOString(), expires_at: null, last_used_at: null, revoked_at: later(1000).toISOString(), state: 'revoked' });
    const text = JSON.stringify(listed);
    const stored = JSON.parse(await readFile(apiKeysPath(home), 'utf8')) as { keys: { secretHash: string }[] };
    for (const { key } of [active, expiring, revoked]) expect(text).not.toContain(partsOf(key)[2]);
    for (const { secretHash } of stored.keys) expect(text).not.toContain(secretHash);
    expect(text).not.toContain('secretHash');
  });

  it('lists nothing on a host without keys', async () => {
    await expect(listApiKeys(home)).resolves.toEqual([]);
  });

  it('revoking an unknown or already revoked name is not_found (exit 4)', async () => {
    expect((await refusal('not_found', () => revokeApiKey(home, 'nope'))).exitCode).toBe(4);
    await create('ci');
    const revoked = await revokeApiKey(home, 'ci', later(1000));
    expect(revoked).toMatchObject({ name: 'ci', state: 'revoked', revoked_at: later(1000).toISOString() });
    expect((await refusal('not_found', () => revokeApiKey(home, 'ci'))).message).toContain('already revoked');
  });
});

/** The key with its payload claims changed by `edit`, the secret kept. */
function withPayload(key: string, edit: (claims: Record<string, unknown>) => void): string {
  const [prefix, payload, secret] = partsOf(key);
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  edit(claims);
  return [prefix, Buffer.from(JSON.stringify(claims)).toString('base64url'), secret].join('.');
}

describe('the workspace, CA host and CA address a key carries', () => {
  const locator = { workspace: 'home lab', caHost: 'ca-box', caAddress: '10.0.0.5:8470' };

  it('carries them, for a machine outside the workspace to find the hosts, and still verifies', async () => {
    const created = await createApiKey(home, { name: 'ci', now: NOW, ...locator });
    expect(created).toMatchObject({ workspace: 'home lab', ca_host: 'ca-box', ca_address: '10.0.0.5:8470' });
    expect(parseApiKey(created.key)).toEqual({ version: 1, id: created.id, name: 'ci', caFingerprint: ca.fingerprint, ...locator });
    await expect(verifyApiKey(home, created.key, NOW)).resolves.toMatchObject({ name: 'ci' });
  });

  it('accepts an IPv6 address and a host name as the CA address, and any one of them alone', async () => {
    expect(parseApiKey((await createApiKey(home, { name: 'v6', caAddress: '[fd00::5]:8470' })).key).caAddress).toBe('[fd00::5]:8470');
    expect(parseApiKey((await createApiKey(home, { name: 'dns', caAddress: 'ca.example.net:443' })).key)).toMatchObject({ caAddress: 'ca.example.net:443' });
    const hostOnly = parseApiKey((await createApiKey(home, { name: 'host-only', caHost: 'ca-box' })).key);
    expect(hostOnly.caHost).toBe('ca-box');
    expect(hostOnly.workspace).toBeUndefined();
    expect(hostOnly.caAddress).toBeUndefined();
  });

  it('parses a key made before these fields existed', async () => {
    const created = await create('old');
    const plain = withPayload(created.key, (claims) => {
      expect(Object.keys(claims).sort()).toEqual(['fp', 'id', 'name', 'v']);
    });
    expect(parseApiKey(plain)).toEqual({ version: 1, id: created.id, name: 'old', caFingerprint: ca.fingerprint });
  });

  it.each([
    ['a CA host name in upper case', { caHost: 'CA-Box' }],
    ['a CA host name with a dot', { caHost: 'ca.box' }],
    ['a CA host name of 64 characters', { caHost: 'a'.repeat(64) }],
    ['a CA address without a port', { caAddress: '10.0.0.5' }],
    ['a CA address with port 0', { caAddress: '10.0.0.5:0' }],
    ['a CA address with spaces', { caAddress: ' 10.0.0.5:8470' }],
    ['a CA address over 300 characters', { caAddress: `${'a'.repeat(300)}:8470` }],
    ['an empty workspace name', { workspace: '' }],
    ['a workspace name with a slash', { workspace: 'a/b' }],
  ])('refuses %s (exit 2), writing nothing', async (_what, bad) => {
    await refusal('invalid_input', () => createApiKey(home, { name: 'ci', now: NOW, ...bad }));
    await expect(listApiKeys(home)).resolves.toEqual([]);
  });

  it.each([
    ['ch', 'CA-BOX'],
    ['ca', 'no-port'],
    ['ca', `${'a'.repeat(300)}:1`],
    ['ws', ''],
    ['ws', 42],
  ])('parseApiKey refuses a payload whose %s is %j', async (field, value) => {
    const created = await createApiKey(home, { name: 'ci', now: NOW, ...locator });
    await refusal('invalid_input', () => parseApiKey(withPayload(created.key, (claims) => (claims[field] = value))));
  });
});

describe('verifyApiKeyWith (hosts holding a copy of the records)', () => {
  it('accepts a valid key against the records the CA host ships, without the file', async () => {
    const created = await create('ci', DAY);
    const shipped = parseApiKeyRecords(JSON.parse(JSON.stringify(await readApiKeyRecords(home))));
    expect(verifyApiKeyWith(shipped, created.key, later(1000))).toEqual({ id: created.id, name: 'ci', principal: 'key:ci' });
    // Pure: verifying does not record last use.
    expect((await listApiKeys(home, NOW))[0]?.last_used_at).toBeNull();
  });

  it('refuses a revoked record, an expired one, and a list without the id', async () => {
    const created = await create('ci', DAY);
    const other = await create('other');
    const records = await readApiKeyRecords(home);
    expect(() => verifyApiKeyWith(records, created.key, later(DAY))).toThrow(/expired/);
    await revokeApiKey(home, 'ci', later(1000));
    const revoked = await readApiKeyRecords(home);
    const error = await refusal('denied', () => verifyApiKeyWith(revoked, created.key, later(2000)));
    expect(error.message).toContain('revoked');
    const withoutId = records.filter((record) => record.id !== created.id);
    expect((await refusal('denied', () => verifyApiKeyWith(withoutId, created.key, NOW))).message).toContain('not one this workspace issued');
    await refusal('denied', () => verifyApiKeyWith([], other.key, NOW));
    expect(verifyApiKeyWith(withoutId, other.key, NOW).name).toBe('other');
  });

  it.each([
    ['name changed', (claims: Record<string, unknown>) => (claims.name = 'admin')],
    ['CA address added', (claims: Record<string, unknown>) => (claims.ca = '10.6.6.6:8470')],
    ['CA host changed', (claims: Record<string, unknown>) => (claims.ch = 'evil')],
  ])('refuses a tampered payload (%s), never quoting the key', async (_what, edit) => {
    const created = await createApiKey(home, { name: 'ci', now: NOW, workspace: 'lab', caHost: 'ca-box' });
    const tampered = withPayload(created.key, edit);
    const records = await readApiKeyRecords(home);
    expect(verifyApiKeyWith(records, created.key, NOW).name).toBe('ci');
    const error = await refusal('denied', () => verifyApiKeyWith(records, tampered, NOW));
    expect(error.message).toContain('not one this workspace issued');
    expect(everythingSaid(error)).not.toContain(partsOf(created.key)[2]);
  });

  it('refuses a malformed key as denied, never quoting it', async () => {
    await create('ci');
    const records = await readApiKeyRecords(home);
    const error = await refusal('denied', () => verifyApiKeyWith(records, 'cmdop-key.bm90LWpzb24.c2VjcmV0', NOW));
    expect(everythingSaid(error)).not.toContain('c2VjcmV0');
  });

  it.each([
    ['not an array', { version: 1, keys: [] }],
    ['a record without its hash', [{ id: 'a'.repeat(32), name: 'ci', created_at: NOW.toISOString(), expires_at: null, last_used_at: null, revoked_at: null }]],
    ['a record with an extra field', [{ id: 'a'.repeat(32), name: 'ci', secretHash: 'b'.repeat(64), created_at: NOW.toISOString(), expires_at: null, last_used_at: null, revoked_at: null, secret: 'x' }]],
  ])('parseApiKeyRecords refuses %s as invalid input', async (_what, json) => {
    await refusal('invalid_input', () => parseApiKeyRecords(json));
  });

  it('parseApiKeyRecords returns frozen records', async () => {
    await create('ci');
    const parsed = parseApiKeyRecords(JSON.parse(JSON.stringify(await readApiKeyRecords(home))));
    expect(parsed).toHaveLength(1);
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(Object.isFrozen(parsed[0])).toBe(true);
  });
});
