/**
 * The bearer authenticator and the joined host's copy of the workspace credentials, without the
 * network: which keys a copy holds after each announce reply (the reply is the whole list, a
 * revocation is never undone), a copy too old to know of revocations, and failures that are not
 * refusals, which must refuse without telling the caller the host's internals.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBearerAuthenticator } from '../../src/daemon/bearer-auth.js';
import { cacheCredentials, credentialsCachePath, currentCredentials } from '../../src/daemon/workspace-credentials.js';
import { createApiKey, readApiKeyRecords } from '../../src/identity/api-key.js';
import { createWorkspaceCa, saveCa, tlsDir, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import type { ApiKeyEntry } from '../../src/transport/mesh-handler.js';
import { createTempDir, removeTempDir } from '../identity/identity-fixtures.js';

let ca: WorkspaceCa;
let caHome: string;
let joined: string;

beforeAll(async () => {
  ca = await createWorkspaceCa({ name: 'lab' });
});

beforeEach(async () => {
  caHome = await createTempDir();
  joined = await createTempDir();
  await saveCa(tlsDir(caHome), ca);
  await mkdir(tlsDir(joined), { recursive: true, mode: 0o700 });
});

afterEach(async () => {
  await removeTempDir(caHome);
  await removeTempDir(joined);
});

/** The CA host's records as an announce reply carries them. */
async function entries(): Promise<ApiKeyEntry[]> {
  return (await readApiKeyRecords(caHome)).map((r) => ({ id: r.id, name: r.name, secret_hash: r.secretHash, expires_at: r.expires_at, revoked_at: r.revoked_at }));
}

function joinedAuth(lastCaContact: () => number, onError?: (error: unknown) => void): ReturnType<typeof createBearerAuthenticator> {
  return createBearerAuthenticator({ home: joined, selfHost: 'beta', isCa: false, caFingerprint: ca.fingerprint, lastCaContact, maxCredentialsAgeMs: 60_000, ...(onError === undefined ? {} : { onError }) });
}

describe('the joined host copy of the credentials', () => {
  it('a key the CA host no longer lists is dropped; a revocation once seen is kept even when a later reply says otherwise', async () => {
    const a = await createApiKey(caHome, { name: 'a' });
    const b = await createApiKey(caHome, { name: 'b' });
    const listed = await entries();
    await cacheCredentials(joined, { api_keys: listed, oidc: null });
    const auth = joinedAuth(() => Date.now());
    await expect(auth(a.key, { peer: 'ipv4:127.0.0.9:1' })).resolves.toMatchObject({ principal: 'key:a', host: '', credential: 'api_key' });

    // The CA host's key file was moved away: its next reply lists nothing, and both keys stop working.
    await cacheCredentials(joined, { api_keys: [], oidc: null });
    await expect(auth(a.key, { peer: 'p' })).rejects.toMatchObject({ code: 'denied', details: { stage: 'authentication' } });

    // b revoked, then an old reply (b not revoked) arrives: b stays revoked.
    const revoked = listed.map((k) => (k.id === b.id ? { ...k, revoked_at: new Date().toISOString() } : k));
    await cacheCredentials(joined, { api_keys: revoked, oidc: null });
    await cacheCredentials(joined, { api_keys: listed, oidc: null });
    const copy = await currentCredentials(joined, false);
    expect(copy.api_keys.find((k) => k.id === b.id)?.revoked_at).not.toBeNull();
    await expect(auth(b.key, { peer: 'p' })).rejects.toThrow(/revoked/);
    await expect(auth(a.key, { peer: 'p' })).resolves.toMatchObject({ principal: 'key:a' });
  });

  it('refuses API keys when the copy is older than allowed, saying why', async () => {
    const a = await createApiKey(caHome, { name: 'a' });
    await cacheCredentials(joined, { api_keys: await entries(), oidc: null });
    await expect(joinedAuth(() => Date.now() - 61_000)(a.key, { peer: 'p' })).rejects.toThrow(/has not reached the CA host for 61 s/);
    await expect(joinedAuth(() => 0)(a.key, { peer: 'p' })).rejects.toThrow(/not yet reached the CA host/);
  });

  it('a damaged copy refuses, telling the caller only that the host cannot verify now; the details go to the log', async () => {
    const a = await createApiKey(caHome, { name: 'a' });
    await writeFile(credentialsCachePath(joined), '{ not json', { mode: 0o600 });
    const logged: unknown[] = [];
    const error = await joinedAuth(() => Date.now(), (e) => logged.push(e))(a.key, { peer: 'p' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'denied', message: 'refused before the gate: this host cannot verify credentials right now' });
    expect((error as Error).message).not.toContain(joined);
    expect(logged).toHaveLength(1);
  });

  it('a key made for another workspace, a share token for another host and an access token with no provider are refused', async () => {
    const other = await createWorkspaceCa({ name: 'elsewhere' });
    const otherHome = await createTempDir();
    try {
      await saveCa(tlsDir(otherHome), other);
      const foreign = await createApiKey(otherHome, { name: 'x' });
      const auth = createBearerAuthenticator({ home: caHome, selfHost: 'alpha', isCa: true, caFingerprint: ca.fingerprint });
      await expect(auth(foreign.key, { peer: 'p' })).rejects.toThrow(/made for another workspace/);
      await expect(auth('eyJhbGciOiJSUzI1NiJ9.e30.c2ln', { peer: 'p' })).rejects.toThrow(/no OpenID provider/);
      await expect(auth('cmdop-share.e30.AAAA', { peer: 'p' })).rejects.toMatchObject({ code: 'denied' });
    } finally {
      await removeTempDir(otherHome);
    }
  });
});
