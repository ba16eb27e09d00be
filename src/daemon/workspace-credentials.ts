/**
 * What every host needs to verify callers that are not hosts: the workspace's API keys (their
 * hashes, never the keys) and its OpenID provider. The CA host reads its own records
 * (`api-keys.json`, `oidc.json`); a joined host keeps the copy the CA host sends with every
 * announce reply in `tls/workspace-credentials.json` (0600), so a restart keeps it and a key
 * revoked on the CA host is refused everywhere within one announce interval.
 *
 * A revocation is never undone by the copy: a key the cache once saw revoked stays revoked, so
 * an old or replayed reply cannot bring it back.
 */
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { parseJsonState } from '../config/json-file.js';
import { readSecureFile } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';
import { apiKeysPath, readApiKeyRecords } from '../identity/api-key.js';
import { readOidcConfig } from '../identity/oidc-config.js';
import { tlsDir } from '../identity/workspace-ca.js';
import type { ApiKeyEntry, WorkspaceCredentials } from '../transport/mesh-handler.js';

/** No credentials: a workspace without API keys or an OpenID provider. */
export const NO_CREDENTIALS: WorkspaceCredentials = Object.freeze({ api_keys: Object.freeze([]), oidc: null });

const isoOrNull = z.string().datetime({ offset: true }).nullable();
const entrySchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{32}$/),
    name: z.string().regex(/^[a-z0-9._-]{1,64}$/),
    secret_hash: z.string().regex(/^[0-9a-f]{64}$/),
    expires_at: isoOrNull,
    revoked_at: isoOrNull,
  })
  .strict();
const fileSchema = z
  .object({
    version: z.literal(1),
    received_at: z.string(),
    api_keys: z.array(entrySchema),
    oidc: z.object({ issuer: z.string().url(), client_id: z.string().min(1), audience: z.string().min(1).nullable() }).strict().nullable(),
  })
  .strict();

/** A joined host's copy of the CA host's credentials. */
export function credentialsCachePath(home: string): string {
  return join(tlsDir(home), 'workspace-credentials.json');
}

const cached = createStatCache(async (file) => parseCache(file, await readSecureFile(file)));
const caKeys = createStatCache(async (file) =>
  (await readApiKeyRecords(dirname(file))).map(
    (record): ApiKeyEntry => Object.freeze({ id: record.id, name: record.name, secret_hash: record.secretHash, expires_at: record.expires_at, revoked_at: record.revoked_at }),
  ),
);

/**
 * The credentials this host verifies callers against: its own records on the CA host, the
 * cached copy elsewhere (none before the first announce reply). A damaged file is
 * CmdopError('config'), which refuses the caller: never a pass.
 */
export async function currentCredentials(home: string, isCa: boolean): Promise<WorkspaceCredentials> {
  if (!isCa) return cached.read(credentialsCachePath(home));
  const [keys, oidc] = await Promise.all([caKeys.read(apiKeysPath(home)), readOidcConfig(home)]);
  return { api_keys: keys, oidc };
}

/** The workspace's OpenID provider alone (the OAuth path has no use for the key list). */
export async function currentOidc(home: string, isCa: boolean): Promise<WorkspaceCredentials['oidc']> {
  return isCa ? readOidcConfig(home) : (await cached.read(credentialsCachePath(home))).oidc;
}

/**
 * Joined host: stores what the CA host sent. The reply is the whole list: a key the CA host no
 * longer lists (its key file was moved away or restored from an older backup) is dropped. A
 * revocation already known is kept, for keys still listed and as a tombstone for the others,
 * so an old or replayed reply can never bring a revoked key back. The provider is replaced by
 * the CA host's.
 */
export async function cacheCredentials(home: string, received: WorkspaceCredentials): Promise<void> {
  const file = credentialsCachePath(home);
  await updateStateFile(file, (current) => {
    let known: WorkspaceCredentials;
    try {
      known = parseCache(file, current);
    } catch {
      // A damaged copy is replaced by the CA host's, which is the record it copies.
      known = NO_CREDENTIALS;
    }
    const tombstones = new Map(known.api_keys.filter((k) => k.revoked_at !== null).map((k) => [k.id, k]));
    const listed = received.api_keys.map((key): ApiKeyEntry => ({ ...key, revoked_at: tombstones.get(key.id)?.revoked_at ?? key.revoked_at }));
    const listedIds = new Set(listed.map((k) => k.id));
    const next = { api_keys: [...listed, ...[...tombstones.values()].filter((k) => !listedIds.has(k.id))], oidc: received.oidc };
    if (JSON.stringify(next) === JSON.stringify({ api_keys: known.api_keys, oidc: known.oidc })) return undefined;
    return `${JSON.stringify({ version: 1, received_at: new Date().toISOString(), ...next }, null, 2)}\n`;
  });
}

function parseCache(file: string, text: string | undefined): WorkspaceCredentials {
  if (text === undefined) return NO_CREDENTIALS;
  const { api_keys: keys, oidc } = parseJsonState(text, fileSchema, (cause) => damaged(file, cause));
  return { api_keys: keys, oidc };
}

function damaged(file: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${file} is damaged, so callers with API keys or OAuth tokens are refused`, {
    cause,
    hint: 'Move it away: the daemon fetches a new copy from the CA host at its next announce.',
    details: { path: file },
  });
}
